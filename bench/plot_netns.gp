# bench/plot_netns.gp — bench/results/netns.csv: a 2-stage group with its
# stages on one host vs on two (network namespaces, MPI over TCP on veth).
# usage: gnuplot -e "csv='bench/results/netns.csv'; out='bench/results/netns.png'" bench/plot_netns.gp
if (!exists("csv")) csv = 'bench/results/netns.csv'
if (!exists("out")) out = 'bench/results/netns.png'
set terminal pngcairo size 1200,420 font ",10"
set output out
set datafile separator ','
set key top left
set grid
set xlabel 'round'
set offsets graph 0.1, graph 0.1, graph 0.1, 0
rows(x) = sprintf("< awk -F, 'NR > 1 && $1 == \"%s\"' '%s'", x, csv)
set multiplot layout 1,3 title "2-stage group: stages on one host vs two hosts (network namespaces)"
set ylabel 'one stream: tokens/s'
plot rows('one') using 2:4 with linespoints pointsize 1.5 title 'one host', rows('two') using 2:4 with linespoints pointsize 1.5 title 'two hosts'
set ylabel '8 streams: tokens/s'
plot rows('one') using 2:5 with linespoints pointsize 1.5 title 'one host', rows('two') using 2:5 with linespoints pointsize 1.5 title 'two hosts'
set ylabel 'micro-batch: % outside compute'
plot rows('one') using 2:9 with linespoints pointsize 1.5 title 'one host', rows('two') using 2:9 with linespoints pointsize 1.5 title 'two hosts'
unset multiplot
