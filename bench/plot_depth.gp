# bench/plot_depth.gp — bench/results/depth.csv (layout,metric,run,value): the
# 56-layer 3b-shape model on 4 hosts (without and with Open MPI's TCP progress
# thread: 'p.t.'), on 1 host (4 stages), on 1 stage, with the composed
# estimates beside them: every run as a point, medians and
# estimates as bars; one panel per metric.
# usage: gnuplot -e "csv='bench/results/depth.csv'; out='bench/results/depth.png'" bench/plot_depth.gp
if (!exists("csv")) csv = 'bench/results/depth.csv'
if (!exists("out")) out = 'bench/results/depth.png'
if (!exists("title")) title = ''
set terminal pngcairo size 1400,460 font ",10"
set output out
set datafile separator ','
set grid ytics
set style fill solid 0.6 border -1
set boxwidth 0.6
set key off
set yrange [0:*]
set xrange [-0.6:8.1]
set xtics rotate by -30 left ('4 hosts' 0, '4 hosts, p.t.' 1, '1 host, 4 st.' 2, '1 stage' 3, 'est. here S=4' 4.5, 'est. here S=1' 5.5, 'est. docs S=4' 6.5, 'est. docs S=1' 7.5) font ",9"
# x position of a layout; value rows of one metric and kind (a run number, median, estimate)
xof(l) = l eq 'hosts4' ? 0 : l eq 'hosts4pt' ? 1 : l eq 'host1' ? 2 : l eq 'stage1' ? 3 : l eq 'est-here-s4' ? 4.5 : l eq 'est-here-s1' ? 5.5 : l eq 'est-docs-s4' ? 6.5 : 7.5
rows(m, k) = sprintf("< awk -F, '$2 == \"%s\" && (\"%s\" == \"run\" ? $3 ~ /^[0-9]+$/ : $3 == \"%s\")' '%s'", m, k, k, csv)
set multiplot layout 1,4 title 'Full depth: the 3b shape served by one group, measured and composed' . (title eq '' ? '' : "\n" . title)
do for [m in "ttft16_ms ttft128_ms decode_tok_s c4_tok_s"] {
    lab = m eq 'ttft16_ms' ? 'TTFT, 16-token prompt (ms)' : m eq 'ttft128_ms' ? 'TTFT, 128-token prompt (ms)' : \
          m eq 'decode_tok_s' ? 'one stream: decode tokens/s' : '4 streams: tokens/s in all'
    set ylabel lab
    plot rows(m, 'median') using (xof(strcol(1))):4 with boxes lc rgb '#2471a3', \
         rows(m, 'estimate') using (xof(strcol(1))):4 with boxes lc rgb '#aab7b8', \
         rows(m, 'run') using (xof(strcol(1)) + 0.15):4 with points pt 6 ps 0.8 lc rgb '#c0392b'
}
unset multiplot
