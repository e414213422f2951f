/** The committed demo sample's media playlist (8 x 2 s MPEG-TS segments). */
export const DEMO_SAMPLE_PLAYLIST: string;

export interface SourceSegment {
  /** Absolute path of the clear segment. */
  path: string;
  /** EXTINF, seconds. */
  duration: number;
}

/** The init section (EXT-X-MAP) of a clear VOD media playlist, as an absolute path, if it has one. */
export function readSourceMap(playlist: string): string | undefined;

/** The segments of a clear VOD media playlist. */
export function readSourceSegments(playlist: string): SourceSegment[];

export interface LiveEncoderOptions {
  /** Folder the live stream is written into (created). */
  dir: string;
  /**
   * A clear VOD media playlist whose segments are used, in a loop (with its EXT-X-MAP, copied as
   * init.mp4, for fMP4). Default: the demo sample.
   */
  source?: string;
  /** Segments to write in all. Default: as many as the source has. */
  count?: number;
  /** Segments the playlist keeps (a sliding window, ffmpeg's -hls_list_size); 0: all. Default 5. */
  window?: number;
  /** Media sequence number of the first segment. Default 0. */
  startSequence?: number;
  /** The top playlist's name: the media playlist, or with `variants` the multivariant one. Default index.m3u8 / master.m3u8. */
  playlist?: string;
  /** A segment's file name from its media sequence number. Default `live{sequence}.ts`. */
  segmentName?: (sequence: number) => string;
  /** With n > 0: a multivariant playlist naming n media playlists v0/index.m3u8 … (same media). */
  variants?: number;
  /** ISO time of the first segment: writes EXT-X-PROGRAM-DATE-TIME before every segment. */
  programDateTime?: string;
  /** run(): ms between segments. Default: each segment's EXTINF duration (real time). */
  segmentIntervalMs?: number;
  /** Delete segments once they have left the window (ffmpeg's -hls_flags delete_segments). */
  deleteOld?: boolean;
  /** run(): write EXT-X-ENDLIST after the last segment. Default true. */
  endList?: boolean;
  /** Leave the next segment half written on disk, as an encoder does while writing it. Default true. */
  partial?: boolean;
}

export interface LiveSegment {
  sequence: number;
  /** File name as the playlist names it. */
  file: string;
  /** The files written for it, relative to `dir` (one per variant). */
  files: string[];
  /** Absolute path of the clear source segment it is a copy of. */
  clear: string;
  /** EXTINF, seconds. */
  duration: number;
  /** Preceded by EXT-X-DISCONTINUITY (the source's loop starts again). */
  discontinuity: boolean;
  /** Media time of its start, ms since the stream's first segment. */
  offsetMs: number;
}

export interface LiveEncoder {
  /** The top playlist (media, or multivariant with `variants`). */
  readonly playlistPath: string;
  /** The media playlists, relative to `dir`. */
  readonly mediaPlaylists: string[];
  /** Segments written so far, in order. */
  readonly segments: readonly LiveSegment[];
  /** EXT-X-ENDLIST has been written. */
  readonly ended: boolean;
  /** The segment the encoder writes at 0-based position `index` (written or not). */
  segmentAt(index: number): LiveSegment;
  /** Writes the next segment, then the playlist naming it; undefined once `count` are written. */
  next(): Promise<LiveSegment | undefined>;
  /** Writes EXT-X-ENDLIST. */
  end(): Promise<void>;
  /** Writes the segments in real time (segmentIntervalMs apart), then EXT-X-ENDLIST; `signal` stops it. */
  run(options?: { signal?: AbortSignal }): Promise<void>;
}

export function createLiveEncoder(options: LiveEncoderOptions): LiveEncoder;
