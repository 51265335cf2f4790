# bench/plot_sim.gp — bench/results/sim.csv as three panels against offered
# load: throughput, p99 TTFT and the share served exactly on a compacted
# group, one line per scenario (policy, or affinity with the rebalancer).
# usage: gnuplot -e "csv='bench/results/sim.csv'; out='bench/results/sim.png'" bench/plot_sim.gp
if (!exists("csv")) csv = 'bench/results/sim.csv'
if (!exists("out")) out = 'bench/results/sim.png'
set terminal pngcairo size 1500,480 font ",10"
set output out
set datafile separator ','
set key top left
set grid
set xlabel 'offered load (x all-dense capacity)'
set offsets graph 0.05, graph 0.05, graph 0.05, 0
scen = "affinity round-robin least-loaded dense-only affinity+rebalance"
# one scenario's rows (lines break at skipped points, so filter with awk)
rows(x) = sprintf("< awk -F, 'NR > 1 && $1 == \"%s\"' '%s'", x, csv)
set multiplot layout 1,3 title 'bench/sim: simulated deployment (see docs/BENCHMARKS.md)'
set ylabel 'generated tokens/s'
plot for [s in scen] rows(s) using 4:($14) with linespoints pointsize 1.2 title s
set ylabel 'p99 TTFT (s)'
set logscale y
plot for [s in scen] rows(s) using 4:($18 / 1000) with linespoints pointsize 1.2 title s
unset logscale y
set ylabel 'share served exactly on a compacted group'
set yrange [0:1.05]
plot for [s in scen] rows(s) using 4:($24) with linespoints pointsize 1.2 title s
unset multiplot
