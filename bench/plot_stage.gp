# plot_stage.gp — PNGs from bench_stage's per-model summary CSV.
# usage: gnuplot -e "summary='bench/results/stage_summary.csv'; outdir='bench/results'" bench/plot_stage.gp
# Writes OUTDIR/stage_decode.png (decode tokens/s by model at batch 1, 4, 16),
# OUTDIR/stage_prefill.png (prefill tokens/s) and OUTDIR/stage_bw.png (batch-1
# weight bandwidth as a fraction of the measured DRAM read bandwidth).
# Columns: model,kind,prefill_tok_s,decode_b1,decode_b4,decode_b16,b1_gbps,b1_bw_fraction,membw_gbps
if (!exists("summary")) summary = 'bench/results/stage_summary.csv'
if (!exists("outdir")) outdir = 'bench/results'
if (!exists("title_note")) title_note = ''
set datafile separator ','
set terminal pngcairo size 1100,520 font 'sans,10' noenhanced
set style data histograms
set style fill solid 0.85 border -1
set boxwidth 0.85
set grid ytics
set xtics rotate by -35 scale 0
set key top right

set output outdir.'/stage_decode.png'
set title 'Stage decode throughput (tokens/s), by batch'.title_note
set style histogram clustered gap 1
set logscale y
set ylabel 'tokens/s (log scale)'
plot summary using 4:xtic(1) skip 1 title 'batch 1' lc rgb '#4472c4', \
     '' using 5 skip 1 title 'batch 4' lc rgb '#ed7d31', \
     '' using 6 skip 1 title 'batch 16' lc rgb '#70ad47'
unset logscale y

set output outdir.'/stage_prefill.png'
set title 'Stage prefill throughput (tokens/s, one 512-token prompt)'.title_note
set style histogram clustered gap 1
set ylabel 'tokens/s'
set yrange [0:*]
plot summary using 3:xtic(1) skip 1 title 'prefill' lc rgb '#4472c4'

set output outdir.'/stage_bw.png'
set title 'Batch-1 decode: weight bytes per step / step time, as a fraction of measured DRAM read bandwidth'.title_note
set ylabel 'fraction of DRAM bandwidth'
set yrange [0:1.2]
set arrow 1 from graph 0, first 0.8 to graph 1, first 0.8 nohead dt 2 lw 2 lc rgb '#c00000'
set label 1 'target 0.8' at graph 0.90, first 0.75 tc rgb '#c00000'
plot summary using 8:xtic(1) skip 1 title 'b1 bandwidth fraction' lc rgb '#70ad47'
