#!/bin/sh
# Makes the clear sample this folder holds (committed, so nobody needs ffmpeg to run the demo or
# the tests). Made with Debian's ffmpeg 5.1: 16 s of a synthetic test pattern (320x180, 25 fps,
# H.264 Main) with a 440 Hz tone (AAC-LC, stereo), cut into 2 s MPEG-TS segments, with a
# multivariant playlist (master.m3u8) naming the one media playlist (index.m3u8).
set -e
cd "$(dirname "$0")"
rm -f master.m3u8 index.m3u8 seg*.ts
ffmpeg -hide_banner -loglevel error \
  -f lavfi -i "testsrc2=size=320x180:rate=25:duration=16" \
  -f lavfi -i "sine=frequency=440:sample_rate=44100:duration=16" \
  -c:v libx264 -profile:v main -pix_fmt yuv420p -preset veryfast -b:v 200k -maxrate 250k -bufsize 500k \
  -g 50 -keyint_min 50 -sc_threshold 0 \
  -c:a aac -b:a 64k -ac 2 \
  -f hls -hls_time 2 -hls_playlist_type vod -hls_segment_type mpegts \
  -hls_segment_filename "seg%03d.ts" -master_pl_name master.m3u8 \
  index.m3u8
