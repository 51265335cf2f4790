# bench/plot_prefill.gp — bench/results/prefill.csv and prefill_summary.csv:
# TTFT of one long prompt against the stages P, its prefill chunks one at a
# time (old) vs pipelined (new): every run as a point, the medians as lines;
# and the old/new ratio of the medians per P.
# usage: gnuplot -e "csv='bench/results/prefill.csv'; summary='bench/results/prefill_summary.csv'; out='bench/results/prefill.png'" bench/plot_prefill.gp
if (!exists("csv")) csv = 'bench/results/prefill.csv'
if (!exists("summary")) summary = 'bench/results/prefill_summary.csv'
if (!exists("out")) out = 'bench/results/prefill.png'
if (!exists("title")) title = ''
set terminal pngcairo size 1100,440 font ",10"
set output out
set datafile separator ','
set grid
set xlabel 'pipeline stages P'
set xtics 1
set xrange [0.5:3.5]
rows(m) = sprintf("< awk -F, 'NR > 1 && $2 == \"%s\"' '%s'", m, csv)
set multiplot layout 1,2 title 'TTFT of one prompt, prefill chunks one at a time (old) vs pipelined across the stages (new)' . (title eq '' ? '' : "\n" . title)
set key bottom left
set ylabel 'TTFT (ms)'
set yrange [0:*]
plot summary using 1:2 skip 1 with linespoints lw 2 pt 7 ps 1.2 lc rgb '#c0392b' title 'old: one chunk at a time (median)', \
     summary using 1:3 skip 1 with linespoints lw 2 pt 7 ps 1.2 lc rgb '#2471a3' title 'new: chunks pipelined (median)', \
     rows('old') using ($1 - 0.05):4 with points pt 6 ps 0.8 lc rgb '#c0392b' notitle, \
     rows('new') using ($1 + 0.05):4 with points pt 6 ps 0.8 lc rgb '#2471a3' notitle
set ylabel 'TTFT old / new (median)'
set yrange [0:*]
set key off
set offsets 0, 0, graph 0.12, 0
set style fill solid 0.6
set boxwidth 0.5
plot summary using 1:4 skip 1 with boxes lc rgb '#2471a3', \
     summary using 1:4:(sprintf('%.2fx', $4)) skip 1 with labels offset 0,0.8 notitle
unset multiplot
