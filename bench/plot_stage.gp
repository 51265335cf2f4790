# plot_stage.gp — PNGs from bench_stage's per-model summary CSV, one line per weight type.
# usage: gnuplot -e "summary='bench/results/stage_summary.csv'; outdir='bench/results'" bench/plot_stage.gp
# Writes OUTDIR/stage_decode.png (decode tokens/s by model at batch 1 and at batch 16),
# OUTDIR/stage_prefill.png (prefill tokens/s) and OUTDIR/stage_bw.png (batch-1 weight
# bandwidth as a fraction of the measured DRAM read bandwidth).
# Columns: model,kind,membw_gbps, then for each type T of f32,f16,bf16,q8_0 (empty where not
# measured): prefill_T,b1_T,b4_T,b16_T,b1_gbps_T,b1_share_T — type i (0..3) starts at column 4 + 6i.
if (!exists("summary")) summary = 'bench/results/stage_summary.csv'
if (!exists("outdir")) outdir = 'bench/results'
if (!exists("title_note")) title_note = ''
types = 'f32 f16 bf16 q8_0'
colors = '#4472c4 #a5a5a5 #ed7d31 #70ad47'
col(i, what) = 4 + 6 * i + what   # what: 0 prefill, 1 b1, 2 b4, 3 b16, 4 b1 GB/s, 5 b1 share
set datafile separator ','
set datafile missing ''
set terminal pngcairo size 1100,520 font 'sans,10' noenhanced
set grid ytics
set xtics rotate by -35 scale 0
set key top right
set offsets 0.3, 0.3, 0, 0
set style data linespoints

set output outdir.'/stage_decode.png'
set terminal pngcairo size 1100,820 font 'sans,10' noenhanced
set multiplot layout 2,1
set logscale y
set ylabel 'tokens/s (log scale)'
set title 'Stage decode throughput at batch 1 (tokens/s), one line per weight type'.title_note
plot for [i=0:3] summary using 0:(column(col(i, 1))):xtic(1) skip 1 title word(types, i + 1) \
     lw 2 pt 7 lc rgb word(colors, i + 1)
set title 'Stage decode throughput at batch 16 (tokens/s)'.title_note
plot for [i=0:3] summary using 0:(column(col(i, 3))):xtic(1) skip 1 title word(types, i + 1) \
     lw 2 pt 7 lc rgb word(colors, i + 1)
unset multiplot
unset logscale y
set terminal pngcairo size 1100,520 font 'sans,10' noenhanced

set output outdir.'/stage_prefill.png'
set title 'Stage prefill throughput (tokens/s, one prompt), one line per weight type'.title_note
set ylabel 'tokens/s'
set yrange [0:*]
plot for [i=0:3] summary using 0:(column(col(i, 0))):xtic(1) skip 1 title word(types, i + 1) \
     lw 2 pt 7 lc rgb word(colors, i + 1)

set output outdir.'/stage_bw.png'
set title 'Batch-1 decode: weight bytes per step / step time, as a fraction of measured DRAM read bandwidth'.title_note
set ylabel 'fraction of DRAM bandwidth'
set yrange [0:*]
set arrow 1 from graph 0, first 0.8 to graph 1, first 0.8 nohead dt 2 lw 2 lc rgb '#c00000'
set label 1 'target 0.8' at graph 0.90, first 0.75 tc rgb '#c00000'
plot for [i=0:3] summary using 0:(column(col(i, 5))):xtic(1) skip 1 title word(types, i + 1) \
     lw 2 pt 7 lc rgb word(colors, i + 1)
