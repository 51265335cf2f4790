# plot_router.gp — PNG from bench_router's ping trace.
# usage: gnuplot -e "trace='bench/results/router.csv.pings.csv'; outdir='bench/results'" bench/plot_router.gp
# Writes OUTDIR/router.png: the event loop's answer time to each Ping over the
# admission run, with 1 and 2 predictor threads in one router and with two
# routers of 1 thread each (points where the predictor was saturated), and
# the 50 ms target as a line.
# Columns: routers(1) threads(2) t_s(3) ping_ms(4) predicting(5) saturated(6)
if (!exists("trace")) trace = 'bench/results/router.csv.pings.csv'
if (!exists("outdir")) outdir = 'bench/results'
set datafile separator ','
set terminal pngcairo size 800,480 font 'sans,10' noenhanced
set output outdir.'/router.png'
set title 'ifp-router: Ping answer time while a 302M predictor admits a burst'
set xlabel 'seconds since the burst'
set ylabel 'Ping round trip (ms, log)'
set logscale y
set grid
set key outside bottom center horizontal
set arrow 1 from graph 0, first 50 to graph 1, first 50 nohead dt 2 lw 2 lc rgb '#c00000'
set label 1 'target 50 ms' at graph 0.02, first 60 tc rgb '#c00000'
plot trace using ($1==1 && $2==1 && $6==1 ? $3 : 1/0):4 skip 1 with points pt 7 ps 0.5 lc rgb '#4472c4' title '1 router, 1 predictor thread', \
     trace using ($1==1 && $2==2 && $6==1 ? $3 : 1/0):4 skip 1 with points pt 7 ps 0.5 lc rgb '#ed7d31' title '1 router, 2 threads', \
     trace using ($1==2 && $6==1 ? $3 : 1/0):4 skip 1 with points pt 9 ps 0.6 lc rgb '#70ad47' title '2 routers, 1 thread each'
