// One page, three ways to start the same content, timed from the same moment (before any
// request) to the first decoded frame:
//   blindcast  @blindcast/player, leases on, on the encrypted stream
//   clear      plain hls.js on the unencrypted stream (the floor)
//   hlsjs      plain hls.js on the encrypted stream, creating the lease first and adding the
//              token and lease to key requests with xhrSetup (what one would write by hand)
// With `seekTo`, once playback passes `seekFrom` the page seeks to `seekTo` and times the seek
// from that moment to the first frame presented at the new position.
import { createPlayer } from "@blindcast/player";
import Hls from "hls.js";

interface BenchState {
  ttff?: number;
  waiting: { at: number; time: number }[];
  playingAt?: number;
  ended?: boolean;
  error?: string;
  /** When the seek was made and when its first frame was presented, in ms since the epoch. */
  seek?: { startedAt: number; frameAt?: number; ms?: number };
}
declare global {
  interface Window {
    __bench: BenchState;
  }
}

const params = new URLSearchParams(location.search);
const mode = params.get("mode") ?? "blindcast";
const src = params.get("src") ?? "";
const keyServerUrl = params.get("keyServerUrl") ?? "";
const contentId = params.get("contentId") ?? "";
const token = params.get("token") ?? "";
const rate = Number(params.get("rate") ?? 1);
const seekFrom = Number(params.get("seekFrom") ?? 0);
const seekTo = Number(params.get("seekTo") ?? Number.NaN);
const video = document.getElementById("video") as HTMLVideoElement;
const state: BenchState = { waiting: [] };
window.__bench = state;

const t0 = performance.now();
video.requestVideoFrameCallback(() => {
  state.ttff = performance.now() - t0;
});
video.addEventListener("playing", () => {
  state.playingAt ??= performance.now();
  video.playbackRate = rate;
});
video.addEventListener("waiting", () => {
  if (state.playingAt !== undefined) state.waiting.push({ at: performance.now(), time: video.currentTime });
});
video.addEventListener("ended", () => {
  state.ended = true;
});
if (seekTo >= 0) {
  const onTime = () => {
    if (video.currentTime < seekFrom || state.seek) return;
    const started = performance.now();
    const seek: NonNullable<BenchState["seek"]> = { startedAt: performance.timeOrigin + started };
    state.seek = seek;
    // The first frame from the new position (a frame still on screen from before is earlier).
    const onFrame: VideoFrameRequestCallback = (_now, frame) => {
      if (frame.mediaTime < seekTo - 1) return void video.requestVideoFrameCallback(onFrame);
      const at = performance.now();
      seek.ms = at - started;
      seek.frameAt = performance.timeOrigin + at;
    };
    video.requestVideoFrameCallback(onFrame);
    video.currentTime = seekTo;
  };
  video.addEventListener("timeupdate", onTime);
}
const play = () => video.play().catch((error: unknown) => (state.error = String(error)));

if (mode === "blindcast") {
  const player = createPlayer(video, { keyServerUrl, getToken: () => token });
  player.on("error", (error) => (state.error = `${error.code}: ${error.message}`));
  player.load(src, { contentId });
  play();
} else if (mode === "clear") {
  const hls = new Hls();
  hls.attachMedia(video);
  hls.loadSource(src);
  play();
} else {
  const lease = (await fetch(`${keyServerUrl}/leases`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ contentId }),
  }).then((r) => r.json())) as { leaseId: string };
  const hls = new Hls({
    xhrSetup: (xhr, url) => {
      if (url.startsWith(keyServerUrl)) {
        xhr.setRequestHeader("authorization", `Bearer ${token}`);
        xhr.setRequestHeader("x-blindcast-lease", lease.leaseId);
      }
    },
  });
  hls.on(Hls.Events.ERROR, (_e, data) => {
    if (data.fatal) state.error = data.details;
  });
  hls.attachMedia(video);
  hls.loadSource(src);
  play();
}
