// The page a user's app would be: the player from the installed tarball, built by Vite. The test
// names the key server, the stream and the viewer's token in the query string, and reads what
// happened from window.outsideIn.
import { type BlindcastPlayerError, createPlayer, isSupported, type KeyLoadedEvent } from "@blindcast/player";

interface OutsideIn {
  keys: Pick<KeyLoadedEvent, "contentId" | "epoch" | "prefetch">[];
  errors: { code: string; message: string }[];
  leases: number;
}

declare global {
  interface Window {
    outsideIn: OutsideIn;
  }
}

const state: OutsideIn = { keys: [], errors: [], leases: 0 };
window.outsideIn = state;

const params = new URLSearchParams(location.search);
const video = document.querySelector("video");
if (!video || !isSupported()) throw new Error("This browser cannot play Blindcast streams");

const player = createPlayer(video, {
  keyServerUrl: params.get("keyServerUrl") ?? "",
  getToken: () => params.get("token"),
});
player.on("keyloaded", ({ contentId, epoch, prefetch }) => state.keys.push({ contentId, epoch, prefetch }));
player.on("leasecreated", () => {
  state.leases += 1;
});
player.on("error", (error: BlindcastPlayerError) =>
  state.errors.push({ code: error.code, message: error.message }),
);
player.load(params.get("src") ?? "", { contentId: params.get("contentId") ?? "" });
void video.play();
