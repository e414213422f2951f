// One page, three ways to start the same content, timed from the same moment (before any
// request) to the first decoded frame:
//   blindcast  @blindcast/player, leases on, on the encrypted stream
//   clear      plain hls.js on the unencrypted stream (the floor)
//   hlsjs      plain hls.js on the encrypted stream, creating the lease first and adding the
//              token and lease to key requests with xhrSetup (what one would write by hand)
import { createPlayer } from "@blindcast/player";
import Hls from "hls.js";

interface BenchState {
  ttff?: number;
  waiting: { at: number; time: number }[];
  playingAt?: number;
  ended?: boolean;
  error?: string;
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
