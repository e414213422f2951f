import {
  type BlindcastPlayer,
  type BlindcastPlayerError,
  createPlayer,
  type LeaseInfo,
  type LoadOptions,
  type PlayerErrorCode,
} from "@blindcast/player";

interface DemoConfig {
  keyServerUrl: string;
  src: string;
  contentId: string;
  token: string | null;
  /** `?firstKey=playlist` (live streams), `content` or an epoch; the player's default otherwise. */
  firstKey: LoadOptions["firstKey"];
}

/** What the page did, for people (the panels) and for the end-to-end tests (window.__blindcast). */
interface DemoState {
  player: BlindcastPlayer | undefined;
  events: { name: string; at: number; detail: Record<string, unknown> }[];
  errors: { code: PlayerErrorCode; message: string; reason: string | undefined }[];
}

declare global {
  interface Window {
    __blindcast: DemoState;
  }
}

const PLAIN_WORDS: Record<PlayerErrorCode, string> = {
  INVALID_OPTIONS: "The page configured the player wrongly.",
  MSE_UNSUPPORTED:
    "This browser cannot play encrypted streams (it lacks Media Source Extensions or WebCrypto).",
  INVALID_KEY_URI: "The video's playlist names its keys in a form the player does not know.",
  AUTH_FAILED: "You are not signed in, or the key server did not accept your sign-in.",
  FORBIDDEN: "The key server refused to give this page keys.",
  BAD_REQUEST: "The key server could not understand the request.",
  LEASE_LOST: "Your viewing session was ended on the server.",
  LEASE_EXPIRED: "Your viewing session expired and could not be renewed.",
  LEASE_LIMIT: "You are already watching on as many screens as allowed.",
  KEY_INVALID: "The key server sent a broken key.",
  INVALID_RESPONSE: "The key server answered in a way the player cannot use (a redirect, or a broken lease).",
  KEY_SERVER_UNAVAILABLE: "The key server cannot be reached right now.",
  DECRYPTION_FAILED: "The video could not be decrypted: the key server's keys do not match this video.",
  PLAYBACK_ERROR: "The video could not be played.",
};

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const video = $<HTMLVideoElement>("video");
const state: DemoState = { player: undefined, events: [], errors: [] };
window.__blindcast = state;

async function loadConfig(): Promise<DemoConfig> {
  const params = new URLSearchParams(location.search);
  const file = (await fetch("/demo-config.json")
    .then((r) => (r.ok ? r.json() : {}))
    .catch(() => ({}))) as Partial<DemoConfig>;
  const pick = (name: keyof DemoConfig) => params.get(name) ?? (file[name] as string | undefined) ?? "";
  return {
    keyServerUrl: pick("keyServerUrl"),
    src: pick("src"),
    contentId: pick("contentId"),
    token: params.has("token") ? params.get("token") || null : (file.token ?? null),
    firstKey: firstKeyOf(params.get("firstKey")),
  };
}

function firstKeyOf(value: string | null): LoadOptions["firstKey"] {
  if (value === "playlist" || value === "content") return value;
  return value && /^\d+$/.test(value) ? Number(value) : undefined;
}

const config = await loadConfig();
let token = config.token;
let lease: LeaseInfo | undefined;
let renewals = 0;

function record(name: string, detail: Record<string, unknown> = {}) {
  state.events.push({ name, at: performance.now(), detail });
}

function showError(error: BlindcastPlayerError) {
  state.errors.push({ code: error.code, message: error.message, reason: error.reason });
  const box = $("error");
  box.hidden = false;
  box.textContent = `${PLAIN_WORDS[error.code] ?? error.message}${error.reason ? ` (key server: “${error.reason}”)` : ""} [${error.code}]`;
  $("status").textContent = "Stopped.";
}

async function start() {
  await state.player?.destroy();
  $("error").hidden = true;
  $("keys").replaceChildren();
  lease = undefined;
  renewals = 0;
  $("status").textContent = token ? "Loading…" : "Loading without a sign-in…";
  let player: BlindcastPlayer;
  try {
    player = createPlayer(video, { keyServerUrl: config.keyServerUrl, getToken: () => token });
  } catch (error) {
    showError(error as BlindcastPlayerError);
    return;
  }
  state.player = player;
  player.on("keyloaded", ({ contentId, epoch, durationMs, prefetch }) => {
    record("keyloaded", { contentId, epoch, durationMs, prefetch });
    const item = document.createElement("li");
    item.textContent = `${epoch === undefined ? "content key" : `epoch ${epoch}`}: ${durationMs.toFixed(0)} ms${prefetch ? ", prefetched" : ""}`;
    $("keys").append(item);
  });
  player.on("leasecreated", (info) => {
    record("leasecreated", { contentId: info.contentId, ttlSeconds: info.ttlSeconds });
    lease = info;
  });
  player.on("leaserenewed", (info) => {
    record("leaserenewed", { expiresAt: info.expiresAt.toISOString() });
    lease = info;
    renewals++;
  });
  player.on("leaselost", (lost) => {
    record("leaselost", { code: lost.code, reason: lost.reason });
    lease = undefined;
  });
  player.on("error", (error) => {
    record("error", { code: error.code });
    showError(error);
  });
  player.load(config.src, { contentId: config.contentId, firstKey: config.firstKey });
}

video.addEventListener("playing", () => {
  $("status").textContent = "Playing.";
  record("playing");
});
video.addEventListener("waiting", () => {
  $("status").textContent = "Buffering…";
  record("waiting");
});
video.addEventListener("ended", () => {
  $("status").textContent = "Ended.";
  record("ended");
});

setInterval(() => {
  $("lease-id").textContent = lease ? `${lease.leaseId.slice(0, 8)}…` : "none";
  $("lease-expiry").textContent = lease
    ? `${Math.max(0, (lease.expiresAt.getTime() - Date.now()) / 1000).toFixed(1)} s`
    : "–";
  $("lease-renewals").textContent = String(renewals);
}, 250);

$("sign-in").addEventListener("click", () => {
  token = config.token;
  void start();
});
$("sign-out").addEventListener("click", () => {
  token = null;
  void start();
});
$("bad-token").addEventListener("click", () => {
  token = "not-a-valid-token";
  void start();
});
$("restart").addEventListener("click", () => void start());
window.addEventListener("pagehide", () => void state.player?.destroy());

await start();
