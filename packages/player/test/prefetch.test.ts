import { keysToPrefetch } from "@blindcast/player";
import { M3U8Parser } from "hls.js";
import { describe, expect, it } from "vitest";

/** A packaged playlist as blindcast-pack writes it: a new epoch every `perEpoch` segments. */
function playlist(segments: number, perEpoch: number): string {
  const lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-PLAYLIST-TYPE:VOD"];
  for (let i = 0; i < segments; i++) {
    if (i % perEpoch === 0) {
      const iv = i.toString(16).padStart(32, "0");
      lines.push(`#EXT-X-KEY:METHOD=AES-128,URI="blindcast://keys/movie/${i / perEpoch}",IV=0x${iv}`);
    }
    lines.push("#EXTINF:2,", `seg${i}.ts`);
  }
  lines.push("#EXT-X-ENDLIST");
  return lines.join("\n");
}

function fragmentsOf(text: string) {
  const details = M3U8Parser.parseLevelPlaylist(
    text,
    "https://cdn.test/movie/index.m3u8",
    0,
    "main" as never,
    0,
    null,
  );
  return details.fragments.map((frag) => ({ keyUri: frag.levelkeys?.identity?.uri }));
}

describe("keysToPrefetch", () => {
  const fragments = fragmentsOf(playlist(12, 3)); // epochs 0..3, three segments each

  it("at start, takes the first fragment's key and the next epochs'", () => {
    expect(keysToPrefetch(fragments, 0, 2)).toEqual([
      { contentId: "movie", epoch: 0 },
      { contentId: "movie", epoch: 1 },
      { contentId: "movie", epoch: 2 },
    ]);
  });

  it("fetches the next epoch's key as soon as the current epoch starts, a whole epoch early", () => {
    expect(keysToPrefetch(fragments, 3, 1)).toEqual([
      { contentId: "movie", epoch: 1 },
      { contentId: "movie", epoch: 2 },
    ]);
    expect(keysToPrefetch(fragments, 5, 1).map((r) => r.epoch)).toEqual([1, 2]);
  });

  it("stops at the end of the playlist", () => {
    expect(keysToPrefetch(fragments, 10, 2).map((r) => r.epoch)).toEqual([3]);
    expect(keysToPrefetch(fragments, 99, 2)).toEqual([]);
  });

  it("with one epoch per segment, stays `ahead` keys in front", () => {
    const perSegment = fragmentsOf(playlist(60, 1));
    expect(keysToPrefetch(perSegment, 30, 2).map((r) => r.epoch)).toEqual([30, 31, 32]);
  });

  it("takes only the current key when ahead is 0, and skips clear or foreign-key fragments", () => {
    expect(keysToPrefetch(fragments, 4, 0).map((r) => r.epoch)).toEqual([1]);
    const mixed = [
      { keyUri: undefined },
      { keyUri: "https://x.test/k" },
      { keyUri: "blindcast://keys/a" },
      { keyUri: "blindcast://keys/bad/01" },
    ];
    expect(keysToPrefetch(mixed, 0, 3)).toEqual([{ contentId: "a" }]);
  });

  it("live: adds the epoch after the newest one named, before the playlist names it", () => {
    // A sliding window at the live edge, one epoch per segment: epochs 30..35 named.
    const window = fragmentsOf(playlist(36, 1)).slice(30);
    expect(keysToPrefetch(window, 0, 2, true).map((r) => r.epoch)).toEqual([30, 31, 32, 35, 36]);
    expect(keysToPrefetch(window, 4, 2, true).map((r) => r.epoch)).toEqual([34, 35, 36]);
    // A playlist that ended (or VOD) names every epoch there is.
    expect(keysToPrefetch(window, 4, 2).map((r) => r.epoch)).toEqual([34, 35]);
    // Content keys do not rotate; the last epoch there can be has no successor.
    expect(keysToPrefetch([{ keyUri: "blindcast://keys/a" }], 0, 2, true)).toEqual([{ contentId: "a" }]);
    expect(keysToPrefetch([{ keyUri: "blindcast://keys/a/4294967295" }], 0, 2, true)).toEqual([
      { contentId: "a", epoch: 4294967295 },
    ]);
  });
});
