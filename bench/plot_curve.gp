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
rows(x) = sprintf("< awk -F, 'NR > 1 && $1 == \"%s\"' '%s'", x, csv)
set multiplot layout 1,2 title 'local cluster (3 groups x 2 stages), CURVE on vs off, same load'
set ylabel 'completion tokens/s'
plot rows('curve-on') using 3:11 with linespoints pointsize 1.5 title 'CURVE on', \
     rows('curve-off') using 3:11 with linespoints pointsize 1.5 title 'CURVE off'
set ylabel 'TTFT p50 (ms)'
plot rows('curve-on') using 3:13 with linespoints pointsize 1.5 title 'CURVE on', \
     rows('curve-off') using 3:13 with linespoints pointsize 1.5 title 'CURVE off'
unset multiplot
