# bench/plot_load.gp — bench/results/load.csv as two panels: throughput and
# p99 TTFT against the offered rate, one line per routing policy.
# usage: gnuplot -e "csv='bench/results/load.csv'; out='bench/results/load.png'" bench/plot_load.gp
if (!exists("csv")) csv = 'bench/results/load.csv'
if (!exists("out")) out = 'bench/results/load.png'
set terminal pngcairo size 1200,480 font ",10"
set output out
set datafile separator ','
set key top left
set grid
set xlabel 'offered load (requests/s)'
set offsets graph 0.05, graph 0.05, graph 0.05, 0
pols = "affinity round-robin least-loaded dense-only"
# one scenario's rows (lines break at skipped points, so filter with awk)
rows(x) = sprintf("< awk -F, 'NR > 1 && $1 == \"%s\"' '%s'", x, csv)
set multiplot layout 1,2 title 'ifp local cluster (3 groups x 2 stages) under open-loop load'
set ylabel 'completion tokens/s'
plot for [p in pols] rows(p) using 2:($11) with linespoints pointsize 1.5 title p
set ylabel 'p99 TTFT (ms)'
set logscale y
plot for [p in pols] rows(p) using 2:($15) with linespoints pointsize 1.5 title p
unset multiplot
