# bench/plot_curve.gp — bench/results/curve.csv: tokens/s and TTFT p50 of
# each run, CURVE on against off (runs alternate on, off, on, off ...).
# usage: gnuplot -e "csv='bench/results/curve.csv'; out='bench/results/curve.png'" bench/plot_curve.gp
if (!exists("csv")) csv = 'bench/results/curve.csv'
if (!exists("out")) out = 'bench/results/curve.png'
set terminal pngcairo size 1000,420 font ",10"
set output out
set datafile separator ','
set key top left
set grid
set xlabel 'round'
set offsets graph 0.1, graph 0.1, graph 0.1, 0
if (!exists("hi")) hi = 64
if (!exists("lo")) lo = 16
rows(x, r) = sprintf("< awk -F, 'NR > 1 && $1 == \"%s\" && $2 == %d' '%s'", x, r, csv)
set multiplot layout 1,2 title 'local cluster (3 groups x 2 stages), CURVE on vs off, same load'
set ylabel sprintf('completion tokens/s at %d req/s offered', hi)
plot rows('curve-on', hi) using 3:11 with linespoints pointsize 1.5 title 'CURVE on', \
     rows('curve-off', hi) using 3:11 with linespoints pointsize 1.5 title 'CURVE off'
set ylabel sprintf('TTFT p50 (ms) at %d req/s', lo)
plot rows('curve-on', lo) using 3:13 with linespoints pointsize 1.5 title 'CURVE on', \
     rows('curve-off', lo) using 3:13 with linespoints pointsize 1.5 title 'CURVE off'
unset multiplot
