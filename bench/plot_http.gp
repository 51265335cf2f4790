# bench/plot_http.gp — bench/results/http.csv (path,metric,run,value): the
# same requests through the HTTP API and through ZeroMQ + CURVE, run by run:
# one stream's TTFT, decode tokens/s, the way in and out (the client's TTFT
# or end to end minus the router's own, from its request log) and the
# router's CPU per request; 8 streams' aggregate tokens/s and TTFT p50 per
# round.
# usage: gnuplot -e "csv='bench/results/http.csv'; out='bench/results/http.png'; rounds=5" bench/plot_http.gp
if (!exists("csv")) csv = 'bench/results/http.csv'
if (!exists("out")) out = 'bench/results/http.png'
if (!exists("tokens")) tokens = 128
if (!exists("conc")) conc = 8
if (!exists("rounds")) rounds = 5
set terminal pngcairo size 1100,1100 font ",10"
set output out
set datafile separator ','
set key top right
set grid
set offsets 0, 0, graph 0.1, 0
set xrange [0:*]
rows(p, m) = sprintf("< awk -F, '$1 == \"%s\" && $2 == \"%s\"' '%s'", p, m, csv)
set multiplot layout 3,2 title sprintf('HTTP front door vs ZeroMQ + CURVE, same cluster (1 dense group x 2 stages), %d tokens, greedy', tokens)
set xlabel 'run (one stream, sequential; ZMQ and HTTP interleaved)'
set ylabel 'TTFT (ms; above 20 not shown)'
set yrange [0:*<20]
plot rows('zmq', 'ttft_ms') using 3:4 with points pt 7 ps 0.8 title 'ZMQ (ifp client)', \
     rows('http', 'ttft_ms') using 3:4 with points pt 5 ps 0.8 title 'HTTP SSE (first text event)', \
     rows('zmq', 'router_ttft_ms') using 3:4 with points pt 1 ps 0.8 lc rgb '#888888' title 'router-side TTFT (both)', \
     rows('http', 'router_ttft_ms') using 3:4 with points pt 1 ps 0.8 lc rgb '#888888' notitle
set yrange [0:*]
set ylabel 'decode tokens/s (first to last token)'
plot rows('zmq', 'decode_tps') using 3:4 with points pt 7 ps 0.8 title 'ZMQ', \
     rows('http', 'decode_tps') using 3:4 with points pt 5 ps 0.8 title 'HTTP SSE'
set ylabel "client's time minus the router's (ms; above 5 not shown)"
set yrange [0:*<5]
plot rows('zmq', 'front_ttft_ms') using 3:4 with points pt 7 ps 0.8 title 'ZMQ: TTFT', \
     rows('http', 'front_ttft_ms') using 3:4 with points pt 5 ps 0.8 title 'HTTP SSE: TTFT', \
     rows('http_plain', 'front_e2e_ms') using 3:4 with points pt 9 ps 0.8 title 'HTTP non-streaming: end to end'
set yrange [0:*]
set ylabel "the router's CPU per request (ms, all threads)"
plot rows('zmq', 'router_cpu_ms') using 3:4 with points pt 7 ps 0.8 title 'ZMQ', \
     rows('http', 'router_cpu_ms') using 3:4 with points pt 5 ps 0.8 title 'HTTP SSE', \
     rows('http_plain', 'router_cpu_ms') using 3:4 with points pt 9 ps 0.8 title 'HTTP non-streaming'
set xlabel sprintf('round (%d streams at once)', conc)
set xrange [0.5:rounds + 0.5]
set xtics 1
set ylabel 'aggregate tokens/s'
plot rows('zmq', 'c8_tps') using 3:4 with linespoints pt 7 ps 1.2 title 'ZMQ', \
     rows('http', 'c8_tps') using 3:4 with linespoints pt 5 ps 1.2 title 'HTTP SSE'
set ylabel 'TTFT p50 (ms)'
plot rows('zmq', 'c8_ttft_p50_ms') using 3:4 with linespoints pt 7 ps 1.2 title 'ZMQ', \
     rows('http', 'c8_ttft_p50_ms') using 3:4 with linespoints pt 5 ps 1.2 title 'HTTP SSE'
unset multiplot
