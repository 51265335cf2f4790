# plot_predictor.gp — PNG from bench_predictor's CSV.
# usage: gnuplot -e "csv='bench/results/predictor.csv'; outdir='bench/results'" bench/plot_predictor.gp
# Writes OUTDIR/predictor.png: predictor + routing time as a share of TTFT per
# target shape, against the dense model's prefill and against the IFP-served
# (compacted to K) model's prefill; the 2% target as a line.
# Columns: target_shape(1) ... share_dense(13) prefill56_ifp_s(14) share_ifp(15)
if (!exists("csv")) csv = 'bench/results/predictor.csv'
if (!exists("outdir")) outdir = 'bench/results'
set datafile separator ','
set terminal pngcairo size 800,480 font 'sans,10' noenhanced
set output outdir.'/predictor.png'
set title 'Predictor + top-K + routing, share of TTFT (512-token prompt, 56 layers)'
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set grid ytics
set ylabel 'share of TTFT (%)'
set yrange [0:*]
set key outside bottom center horizontal
set arrow 1 from graph 0, first 2 to graph 1, first 2 nohead dt 2 lw 2 lc rgb '#c00000'
set label 1 'target 2%' at graph 0.02, first 2.3 tc rgb '#c00000'
plot csv using ($13*100):xtic(1) skip 1 title 'vs dense prefill' lc rgb '#4472c4', \
     '' using ($15*100) skip 1 title 'vs IFP (compacted to K) prefill' lc rgb '#ed7d31'
