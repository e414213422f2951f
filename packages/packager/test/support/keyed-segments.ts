/** A segment of a packaged media playlist, with the key URI and IV (hex) that apply to it. */
export interface KeyedSegment {
  uri: string;
  keyUri: string;
  iv: string;
}

/**
 * The segments of a packaged media playlist in order, each with its `EXT-X-KEY`. Throws on a
 * segment without an AES-128 key and explicit IV: the packager writes one for every segment.
 */
export function keyedSegments(playlist: string): KeyedSegment[] {
  const segments: KeyedSegment[] = [];
  let key: { uri: string; iv: string } | undefined;
  for (const line of playlist.split("\n")) {
    const match = /^#EXT-X-KEY:METHOD=AES-128,URI="([^"]+)",IV=0x([0-9a-f]{32})$/.exec(line);
    if (match) key = { uri: match[1] ?? "", iv: match[2] ?? "" };
    else if (line.startsWith("#EXT-X-KEY")) key = undefined;
    else if (line && !line.startsWith("#")) {
      if (!key) throw new Error(`segment ${line} has no key`);
      segments.push({ uri: line, keyUri: key.uri, iv: key.iv });
    }
  }
  return segments;
}
