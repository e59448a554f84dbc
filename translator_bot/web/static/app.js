// The meeting page: join a Janus VideoRoom with the microphone, labelled with the person's name and
// language (display name "Name [lang]" and the stream description {"lang","name"}, which Janus 1.1
// relays where it ignores publisher metadata); hear the other participants' original voices, ducked
// under the interpreter feed meant for this person ({"role":"interpreter","for":<my id>}, or in the
// bot's per-language mode the feed of this person's language, whose "for" lists every listener of it:
// labels.js reads the label); show the captions the interpreter sends on that feed's data channel;
// start an interpreter on request.
//
// Anyone in the room can label a feed "interpreter". Only the interpreter this page's server started
// is trusted: the server tells the page the room participant ids that bot joined and publishes as,
// and a publisher outside that list is an ordinary participant whatever its labels say.
//
// The microphone is published with Opus DTX asked for (sdp.js): while the person is silent the browser
// sends keep-alives every 400 ms (~5 packets a second) instead of 50, which the interpreter and
// Janus then barely pay for. `?dtx=0` publishes without asking (for comparing, or a receiver that
// copes badly with DTX); on Janus >= 1.3.1 the room's `opus_dtx` also has to allow it.
//
// window.translatorBot exposes the page state, the captions and (with ?record=1) a recording of what
// the interpreter feed played, for tests and for people debugging a call.

import { feedServes, sameId } from "/labels.js";
import { asksForOpusDtx, withOpusDtx } from "/sdp.js";

const PLUGIN = "janus.plugin.videoroom";
const ERR_NO_SUCH_ROOM = 426;
const ERR_NO_SUCH_FEED = 428;
const ERR_INVALID_ELEMENT = 430;
const DUCK_THRESHOLD = 0.01; // interpreter RMS (full scale 1.0) above which the translation is "playing"
const DUCK_HOLD_S = 0.6; // keep ducking through short pauses between words
const DUCK_ATTACK_S = 0.05;
const DUCK_RELEASE_S = 0.25;
const MAX_CAPTIONS = 60;
const ROOM_POLL_MS = 3000;
const API_POLL_MS = 1000;
// A feed labelled "interpreter" but not (yet) vouched for by the server waits this long before it is
// played as an ordinary participant: the server learns a new feed's id a moment after it appears.
const CLAIM_GRACE_MS = 3000;

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const ASK_FOR_DTX = params.get("dtx") !== "0";

const page = {
  phase: "idle", // idle | connecting | joining | waiting | in-call | left | error
  error: null, // {code, message}
  interpreter: "absent", // absent | starting | present | joined | exited
  interpreterMessage: "",
  meeting: null,
  myId: null,
  name: "",
  lang: "",
  captions: [],
  duckLevel: 0.15,
  ducking: false,
  config: null,
  dtx: { asked: false, answered: false }, // the microphone's offer asked for Opus DTX; Janus agreed
};

const room = {
  janus: null,
  handle: null,
  roomId: null,
  privateId: null,
  mic: null,
  publishers: new Map(), // id -> publisher info from the room
  attendees: new Map(), // id -> display (everyone in the room, publishing or not)
  subscriptions: new Map(), // feed id -> {kind, handle, elements, sources}
  botSeen: false,
  timers: [],
  apiState: null,
  startProblem: null, // why the last "Start interpreter" was refused, until the next attempt
  trusted: new Set(), // room participant ids of the interpreter this server started, as strings
  claims: new Map(), // id -> when an untrusted publisher labelled "interpreter" was first seen
};

const audio = {
  ctx: null,
  originalIn: null,
  originalGain: null,
  interpreterIn: null,
  analyser: null,
  level: null,
  lastVoice: -Infinity,
  rate: 0,
  recording: [],
  recordedSamples: 0,
};

// --- test / debug hook ---------------------------------------------------------------------------

window.translatorBot = {
  get state() { return page.phase; },
  get error() { return page.error; },
  get interpreter() { return page.interpreter; },
  get myId() { return page.myId; },
  get captions() { return page.captions; },
  get ducking() { return page.ducking; },
  get participants() { return participantList(); },
  snapshot() {
    return {
      state: page.phase,
      error: page.error,
      interpreter: page.interpreter,
      interpreterMessage: page.interpreterMessage,
      myId: page.myId,
      meeting: page.meeting,
      ducking: page.ducking,
      duckLevel: page.duckLevel,
      originalGain: audio.originalGain ? audio.originalGain.gain.value : null,
      participants: participantList(),
      captions: page.captions.map((c) => ({ ...c })),
      subscriptions: [...room.subscriptions.entries()].map(([id, s]) => ({ feed: id, kind: s.kind, live: s.live })),
      recordedSeconds: audio.rate ? audio.recordedSamples / audio.rate : 0,
      dtx: { ...page.dtx },
    };
  },
  // What the interpreter feed played since joining: little-endian int16 PCM, base64, mono.
  interpreterRecording() {
    const rate = audio.rate;
    const pcm = new Int16Array(audio.recordedSamples);
    let at = 0;
    for (const block of audio.recording) {
      for (let i = 0; i < block.length; i++) {
        const v = Math.max(-1, Math.min(1, block[i]));
        pcm[at++] = v < 0 ? v * 32768 : v * 32767;
      }
    }
    const bytes = new Uint8Array(pcm.buffer);
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return { sampleRate: rate, samples: pcm.length, pcm16: btoa(binary) };
  },
};

// --- small helpers -------------------------------------------------------------------------------

function describeError(code, message) {
  page.error = { code, message };
  setPhase("error", message);
}

function setPhase(phase, text) {
  page.phase = phase;
  const status = $("status");
  status.dataset.state = phase;
  status.textContent = text;
  document.body.dataset.phase = phase;
}

function parseJson(text) {
  if (typeof text !== "string" || !text.trim().startsWith("{") || text.length > 4096) return null;
  try {
    const value = JSON.parse(text);
    return value && typeof value === "object" && !Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

// "Beatriz [es]" -> {name, tag}; "Interpreter [bot]" marks an interpreter's own room participant.
function parseDisplay(display) {
  const text = typeof display === "string" ? display.trim() : "";
  const match = /^(.*?)\s*\[([^\[\]]{1,40})\]\s*$/.exec(text);
  if (!match) return { name: text, tag: null };
  return { name: match[1].trim() || text, tag: match[2].trim() };
}

function isBotDisplay(display) {
  const { tag } = parseDisplay(display);
  if (tag && ["bot", "interpreter"].includes(tag.toLowerCase())) return true;
  return /^.+\s->\s.+\(\s*[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*\s*\)\s*$/.test(display || "");
}

function isTrusted(id) {
  return id !== null && id !== undefined && room.trusted.has(String(id));
}

// Who a publisher is: name, language, and whether it is an interpreter feed and for whom. Only the
// trusted interpreter's labels count; `claimsInterpreter` marks anyone else who uses them.
function describePublisher(pub) {
  const trusted = isTrusted(pub.id);
  const shown = parseDisplay(pub.display);
  const info = { id: pub.id, name: shown.name || `participant ${pub.id}`, lang: shown.tag, interpreter: false, forId: null, claimsInterpreter: false };
  for (const stream of pub.streams || []) {
    const desc = parseJson(stream.description);
    if (!desc) continue;
    if (typeof desc.lang === "string") info.lang = info.lang || desc.lang;
    if (typeof desc.name === "string" && desc.name.trim()) info.name = desc.name.trim().slice(0, 200);
    if (desc.role === "interpreter") {
      info.claimsInterpreter = true;
      if (!trusted) continue;
      info.interpreter = true;
      info.forId = desc.for === undefined ? null : desc.for;
      if (typeof desc.lang === "string") info.lang = desc.lang;
    }
  }
  if (isBotDisplay(pub.display)) {
    info.claimsInterpreter = true;
    if (trusted) info.interpreter = true;
  }
  return info;
}

function participantList() {
  const people = [];
  for (const pub of room.publishers.values()) {
    const info = describePublisher(pub);
    if (!info.interpreter) people.push({ id: info.id, name: info.name, lang: info.lang, publishing: true });
  }
  for (const [id, display] of room.attendees) {
    if (room.publishers.has(id) || isTrusted(id)) continue;
    const shown = parseDisplay(display);
    people.push({ id, name: shown.name || `participant ${id}`, lang: shown.tag, publishing: false });
  }
  return people;
}

function languageName(tag) {
  if (!tag) return "language not set";
  const base = String(tag).toLowerCase();
  const known = (page.config?.languages || []).find((l) => l.tag.toLowerCase() === base || l.tag.toLowerCase() === base.split("-")[0]);
  return known ? known.name : tag;
}

// --- page setup ----------------------------------------------------------------------------------

async function loadConfig() {
  const reply = await fetch("/api/config", { cache: "no-store" });
  if (!reply.ok) throw new Error(`the server answered ${reply.status} for its configuration`);
  return reply.json();
}

function fillForm(config) {
  const select = $("lang");
  select.replaceChildren();
  for (const lang of config.languages) {
    const option = document.createElement("option");
    option.value = lang.tag;
    option.textContent = lang.native && lang.native !== lang.name ? `${lang.name} — ${lang.native}` : lang.name;
    select.append(option);
  }
  const wanted = params.get("lang") || localStorage.getItem("translator.lang") || config.default_language;
  const match = config.languages.find((l) => l.tag.toLowerCase() === String(wanted || "").toLowerCase());
  if (match) select.value = match.tag;
  $("name").value = params.get("name") || localStorage.getItem("translator.name") || "";
  const meeting = params.get("meeting");
  if (meeting) $("meeting").value = meeting;
  $("join").disabled = false;
}

async function init() {
  try {
    page.config = await loadConfig();
  } catch (err) {
    describeError("server-unreachable", `Cannot load the page's settings: ${err.message}`);
    return;
  }
  fillForm(page.config);
  setPhase("idle", "Enter your name and language, then join.");
  $("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    join().catch((err) => describeError("unexpected", `Something went wrong: ${err.message || err}`));
  });
  $("leave").addEventListener("click", () => leave("You left the meeting."));
  $("start-interpreter").addEventListener("click", () => startInterpreter());
  $("access-code").value = sessionStorage.getItem("translator.access") || "";
  $("access-code-label").hidden = !page.config.start_needs_token;
  $("duck").addEventListener("input", (event) => {
    page.duckLevel = Number(event.target.value) / 100;
    $("duck-value").textContent = `${event.target.value} %`;
    applyDucking(true);
  });
}

// --- joining -------------------------------------------------------------------------------------

async function join() {
  const name = $("name").value.trim().slice(0, 60);
  const lang = $("lang").value;
  const meeting = $("meeting").value.trim();
  if (!name || !lang || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(meeting)) {
    describeError("invalid-form", "Enter a name, a language and a meeting ID (letters, digits, '.', '_', '-').");
    return;
  }
  Object.assign(page, { name, lang, meeting, error: null });
  localStorage.setItem("translator.name", name);
  localStorage.setItem("translator.lang", lang);
  const kept = `${params.get("record") ? "&record=1" : ""}${ASK_FOR_DTX ? "" : "&dtx=0"}`;
  history.replaceState(null, "", `?meeting=${encodeURIComponent(meeting)}${kept}`);
  $("meeting-title").textContent = meeting;
  $("join").disabled = true;

  setPhase("connecting", "Asking for your microphone…");
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    });
    room.mic = stream.getAudioTracks()[0];
  } catch (err) {
    $("join").disabled = false;
    if (err && (err.name === "NotAllowedError" || err.name === "SecurityError")) {
      describeError("microphone-denied", "Microphone access was denied. Allow the microphone for this page and join again.");
    } else if (err && err.name === "NotFoundError") {
      describeError("microphone-missing", "No microphone was found. Connect one and join again.");
    } else {
      describeError("microphone-error", `The microphone cannot be used: ${err && err.message ? err.message : err}`);
    }
    return;
  }
  await startAudio();

  let Janus;
  try {
    if (!window.adapter) throw new Error("adapter.js missing");
    Janus = (await import("/vendor/janus.js")).default;
  } catch (err) {
    failJoin("client-missing", "The Janus client is not installed on this server (run scripts/vendor-janus-js.sh there).");
    return;
  }
  setPhase("connecting", "Connecting to the meeting server…");
  await new Promise((resolve) => Janus.init({ debug: params.get("debug") === "1" ? "all" : false, dependencies: Janus.useDefaultDependencies({ adapter: window.adapter }), callback: resolve }));
  if (!Janus.isWebrtcSupported()) {
    failJoin("no-webrtc", "This browser cannot make WebRTC calls.");
    return;
  }
  let connected = false;
  room.janus = new Janus({
    server: page.config.janus_url,
    iceServers: page.config.ice_servers || [],
    success: () => {
      connected = true;
      attachPublisher(Janus);
    },
    error: (reason) => {
      if (!connected) {
        failJoin("janus-unreachable", `The meeting server is unreachable (${page.config.janus_url}): ${reason}`);
      } else if (page.phase !== "left") {
        failJoin("connection-lost", `Lost the connection to the meeting server: ${reason}`);
      }
    },
    destroyed: () => {},
  });
}

function failJoin(code, message) {
  teardown();
  $("call").hidden = true;
  $("join-form").hidden = false;
  $("join").disabled = false;
  describeError(code, message);
}

function roomIdFor(meeting, asString) {
  if (!asString && /^\d+$/.test(meeting) && Number(meeting) <= Number.MAX_SAFE_INTEGER && Number(meeting) > 0) {
    return Number(meeting);
  }
  return meeting;
}

function attachPublisher() {
  room.janus.attach({
    plugin: PLUGIN,
    opaqueId: `meeting-page-${Math.random().toString(36).slice(2)}`,
    success: (handle) => {
      room.handle = handle;
      sendJoin(false);
    },
    error: (reason) => failJoin("janus-error", `The meeting server refused the connection: ${reason}`),
    onmessage: onPublisherMessage,
    iceState: (iceState) => {
      if (iceState === "failed") {
        failJoin("connection-failed", "The audio connection failed (the network blocks WebRTC; a TURN server may be needed).");
      }
    },
    webrtcState: (up, reason) => {
      if (up) {
        showPresence();
      } else if (page.phase !== "left" && page.phase !== "error") {
        failJoin("connection-failed", `The audio connection was closed${reason ? ` (${reason})` : ""}.`);
      }
    },
    oncleanup: () => {},
  });
}

function sendJoin(asString) {
  setPhase("joining", `Joining meeting ${page.meeting}…`);
  room.roomId = roomIdFor(page.meeting, asString);
  room.handle.send({
    message: { request: "join", room: room.roomId, ptype: "publisher", display: `${page.name} [${page.lang}]` },
    error: (reason) => failJoin("janus-error", `Cannot join: ${reason}`),
  });
}

function onPublisherMessage(msg, jsep) {
  const event = msg.videoroom;
  if (msg.error_code || (event === "event" && msg.error)) {
    const code = msg.error_code;
    if (code === ERR_INVALID_ELEMENT && typeof room.roomId === "number") {
      sendJoin(true); // a server with string ids: try the id as text
    } else if (code === ERR_NO_SUCH_ROOM) {
      failJoin("meeting-not-found", `Meeting ${page.meeting} does not exist. Check the meeting ID.`);
    } else if (page.phase === "joining") {
      failJoin("join-refused", `The meeting server refused to let you in: ${msg.error || code}`);
    } else {
      // After joining, the only asynchronous request on this handle is publishing the microphone.
      failJoin("publish-failed", `The meeting server refused your microphone: ${msg.error || code}`);
    }
    return;
  }
  if (event === "joined") {
    page.myId = msg.id;
    room.privateId = msg.private_id;
    for (const attendee of msg.attendees || []) room.attendees.set(attendee.id, attendee.display || "");
    publishMic();
    updatePublishers(msg.publishers || []);
    pollRoom();
    room.timers.push(setInterval(pollRoom, ROOM_POLL_MS));
    room.timers.push(setInterval(pollInterpreterApi, API_POLL_MS));
    pollInterpreterApi();
    showPresence();
  } else if (event === "event") {
    if (msg.publishers) updatePublishers(msg.publishers);
    if (msg.joining) {
      room.attendees.set(msg.joining.id, msg.joining.display || "");
      showPresence();
    }
    const gone = msg.leaving ?? msg.unpublished ?? msg.kicked;
    if (gone !== undefined && gone !== "ok") {
      room.publishers.delete(gone);
      room.claims.delete(String(gone));
      dropSubscription(gone);
      if (msg.leaving !== undefined || msg.kicked !== undefined) room.attendees.delete(gone);
      showPresence();
    }
    if (msg.id !== undefined && typeof msg.display === "string") {
      room.attendees.set(msg.id, msg.display);
      const pub = room.publishers.get(msg.id);
      if (pub) updatePublishers([{ ...pub, display: msg.display }]);
      showPresence();
    }
  } else if (event === "destroyed") {
    failJoin("meeting-ended", "The meeting was closed.");
  }
  if (jsep) {
    if (jsep.type === "answer") page.dtx.answered = asksForOpusDtx(jsep.sdp);
    room.handle.handleRemoteJsep({ jsep });
  }
}

function publishMic() {
  room.handle.createOffer({
    tracks: [{ type: "audio", capture: room.mic, recv: false }],
    // Edits the offer before it is set locally and sent: Janus reads the request from it.
    customizeSdp: (jsep) => {
      if (ASK_FOR_DTX) jsep.sdp = withOpusDtx(jsep.sdp);
      page.dtx.asked = asksForOpusDtx(jsep.sdp);
    },
    success: (jsep) => {
      const transceiver = room.handle.webrtcStuff.pc.getTransceivers().find((t) => t.sender && t.sender.track === room.mic);
      const mid = (transceiver && transceiver.mid) || "0";
      const description = JSON.stringify({ lang: page.lang, name: page.name });
      room.handle.send({
        message: { request: "publish", audio: true, video: false, data: false, display: `${page.name} [${page.lang}]`, descriptions: [{ mid, description }] },
        jsep,
      });
    },
    error: (err) => failJoin("publish-failed", `Cannot send your microphone: ${err && err.message ? err.message : err}`),
  });
}

// --- who is in the room --------------------------------------------------------------------------

function updatePublishers(list) {
  for (const pub of list) {
    if (sameId(pub.id, page.myId)) continue;
    room.publishers.set(pub.id, pub);
    room.attendees.set(pub.id, pub.display || "");
    syncSubscription(pub);
  }
  showPresence();
}

// The bot's own room participant ("Interpreter [bot]") publishes nothing until someone needs a
// translation, so presence is also read from the participant list.
function pollRoom() {
  if (!room.handle || !room.roomId) return;
  room.handle.send({
    message: { request: "listparticipants", room: room.roomId },
    success: (reply) => {
      if (!reply || !Array.isArray(reply.participants)) return;
      const present = new Map(reply.participants.map((p) => [p.id, p.display || ""]));
      for (const [id, display] of present) if (!sameId(id, page.myId)) room.attendees.set(id, display);
      for (const id of [...room.attendees.keys()]) if (!present.has(id)) room.attendees.delete(id);
      showPresence();
    },
  });
}

function interpreterInRoom() {
  for (const id of room.attendees.keys()) if (isTrusted(id)) return true;
  for (const id of room.publishers.keys()) if (isTrusted(id)) return true;
  return false;
}

function myInterpreterLive() {
  for (const sub of room.subscriptions.values()) if (sub.kind === "interpreter" && sub.live) return true;
  return false;
}

function showPresence() {
  if (!["joining", "waiting", "in-call"].includes(page.phase) || page.myId === null) return;
  const people = participantList();
  const list = $("people");
  list.replaceChildren();
  const me = document.createElement("li");
  me.className = "me";
  me.textContent = `${page.name} (you) · ${languageName(page.lang)}`;
  list.append(me);
  for (const person of people) {
    const li = document.createElement("li");
    li.textContent = `${person.name} · ${languageName(person.lang)}${person.publishing ? "" : " · no microphone yet"}`;
    list.append(li);
  }
  $("join-form").hidden = true;
  $("call").hidden = false;
  if (people.length === 0) {
    setPhase("waiting", "You are in the meeting. Waiting for the other person to join…");
  } else {
    setPhase("in-call", `In the meeting with ${people.map((p) => p.name).join(", ")}.`);
  }
  showInterpreter();
}

function showInterpreter() {
  let state;
  let text;
  const api = room.apiState;
  if (myInterpreterLive()) {
    state = "joined";
    text = `Interpreter joined: you hear the others in ${languageName(page.lang)}.`;
  } else if (interpreterInRoom()) {
    state = "present";
    const others = participantList();
    text = others.length === 0
      ? "The interpreter is in the meeting, waiting for the other person."
      : others.every((p) => p.lang && p.lang.split("-")[0].toLowerCase() === page.lang.split("-")[0].toLowerCase())
        ? "Everyone speaks your language: nothing to interpret."
        : "The interpreter is preparing your translation…";
  } else if (api && (api.state === "starting" || api.state === "running")) {
    state = "starting";
    text = "Starting the interpreter…";
  } else if (api && api.state === "exited") {
    state = "exited";
    text = `The interpreter stopped: ${api.message}`;
    if (room.startProblem) text += ` It was not started again: ${room.startProblem}`;
  } else {
    state = "absent";
    text = room.startProblem ? `The interpreter was not started: ${room.startProblem}` : "No interpreter in this meeting yet.";
  }
  page.interpreter = state;
  page.interpreterMessage = text;
  $("interpreter").dataset.state = state;
  $("interpreter-text").textContent = text;
  $("start-interpreter").hidden = !(state === "absent" || state === "exited");
}

// --- the server's interpreter API ----------------------------------------------------------------

async function startInterpreter() {
  const button = $("start-interpreter");
  button.disabled = true;
  try {
    const headers = { "Content-Type": "application/json" };
    const code = $("access-code").value.trim();
    if (code) headers.Authorization = `Bearer ${code}`;
    const reply = await fetch(`/api/meetings/${encodeURIComponent(page.meeting)}/interpreter`, {
      method: "POST",
      headers,
      body: "{}",
    });
    const body = await reply.json().catch(() => ({}));
    // A refusal is kept until the next attempt: the server's status poll knows nothing of it.
    if (reply.status === 401) {
      $("access-code-label").hidden = false;
      room.startProblem = code ? "the access code is wrong." : "enter the access code to start it.";
    } else if (reply.status === 429) {
      const wait = reply.headers.get("Retry-After");
      room.startProblem = `${body.error || "too many attempts"}${wait ? ` (try again in ${wait} s)` : ""}`;
    } else if (!reply.ok) {
      room.startProblem = body.error || `the server answered ${reply.status}`;
    } else {
      room.startProblem = null;
      sessionStorage.setItem("translator.access", code);
      setApiState(body);
    }
  } catch (err) {
    room.startProblem = `the web server is unreachable (${err.message})`;
  } finally {
    button.disabled = false;
    showInterpreter();
  }
}

async function pollInterpreterApi() {
  if (!page.meeting || page.phase === "left" || page.phase === "error") return;
  try {
    const reply = await fetch(`/api/meetings/${encodeURIComponent(page.meeting)}/interpreter`, { cache: "no-store" });
    if (reply.ok) {
      const body = await reply.json();
      setApiState(body.state === "none" ? null : body);
    }
  } catch {
    // The page keeps working without the web server; the next poll tries again.
  }
  showInterpreter();
}

// The server's word on its interpreter: its state, and while it runs the participant ids it joined
// and publishes as. A change of those ids re-decides every subscription.
function setApiState(body) {
  room.apiState = body;
  const ids = body && body.state === "running" && Array.isArray(body.participants) ? body.participants.map(String) : [];
  const changed = ids.length !== room.trusted.size || ids.some((id) => !room.trusted.has(id));
  if (!changed) return;
  room.trusted = new Set(ids);
  for (const pub of room.publishers.values()) syncSubscription(pub);
  showPresence();
}

// --- subscriptions -------------------------------------------------------------------------------

function syncSubscription(pub) {
  const info = describePublisher(pub);
  const audioStreams = (pub.streams || []).filter((s) => s.type === "audio" && !s.disabled);
  let kind = null;
  if (info.interpreter) {
    // Only the feed meant for me: mine, my language's (its list holds my id) or a mixed feed meant
    // for everyone; never another listener's. A per-language feed is relabelled as people join and
    // leave, and the page follows: the room's updated description re-runs this.
    if (feedServes(info.forId, page.myId)) kind = "interpreter";
  } else if (info.claimsInterpreter && awaitingVouch(pub.id)) {
    kind = null; // maybe our interpreter's new feed: do not play it as a person's voice meanwhile
  } else {
    kind = "original";
  }
  const current = room.subscriptions.get(pub.id);
  if (!kind || audioStreams.length === 0) {
    if (current) dropSubscription(pub.id);
    return;
  }
  if (current && current.kind === kind) return;
  if (current) dropSubscription(pub.id);
  // The interpreter's captions travel on its data stream, which must be asked for by its own mid.
  const dataStreams = kind === "interpreter" ? (pub.streams || []).filter((s) => s.type === "data" && !s.disabled) : [];
  subscribe(pub.id, kind, [...audioStreams, ...dataStreams].map((s) => s.mid), 0);
}

// An untrusted "interpreter" feed that appears while this server's interpreter runs is held back for
// CLAIM_GRACE_MS, and the server is asked at once whether it is ours; after that it is a participant.
function awaitingVouch(id) {
  const key = String(id);
  const api = room.apiState;
  const botExpected = Boolean(api && (api.state === "starting" || api.state === "running"));
  if (!room.claims.has(key)) {
    room.claims.set(key, Date.now());
    if (botExpected) {
      pollInterpreterApi();
      setTimeout(() => {
        const pub = room.publishers.get(id);
        if (pub) syncSubscription(pub);
      }, CLAIM_GRACE_MS + 50);
    }
  }
  return botExpected && Date.now() - room.claims.get(key) < CLAIM_GRACE_MS;
}

function subscribe(feedId, kind, mids, attempt) {
  const sub = { kind, handle: null, elements: [], sources: [], live: false, closed: false };
  room.subscriptions.set(feedId, sub);
  room.janus.attach({
    plugin: PLUGIN,
    opaqueId: `meeting-page-sub-${Math.random().toString(36).slice(2)}`,
    success: (handle) => {
      sub.handle = handle;
      if (sub.closed) {
        handle.detach();
        return;
      }
      handle.send({
        message: {
          request: "join",
          room: room.roomId,
          ptype: "subscriber",
          streams: mids.map((mid) => ({ feed: feedId, mid })),
          private_id: room.privateId,
        },
      });
    },
    error: (reason) => console.warn("cannot subscribe to", feedId, reason),
    onmessage: (msg, jsep) => {
      if (msg.error_code) {
        if (msg.error_code === ERR_NO_SUCH_FEED && attempt < 3 && !sub.closed) {
          // Media of a new publisher is not up yet: try again shortly.
          dropSubscription(feedId);
          setTimeout(() => {
            const pub = room.publishers.get(feedId);
            if (pub && !room.subscriptions.has(feedId)) subscribe(feedId, kind, mids, attempt + 1);
          }, 300 * (attempt + 1));
        } else {
          console.warn("subscription error", feedId, msg.error_code, msg.error);
        }
        return;
      }
      if (jsep) {
        const wantsData = kind === "interpreter" && /m=application/.test(jsep.sdp || "");
        sub.handle.createAnswer({
          jsep,
          tracks: wantsData ? [{ type: "data" }] : [],
          success: (answer) => sub.handle.send({ message: { request: "start", room: room.roomId }, jsep: answer }),
          error: (err) => console.warn("cannot answer the feed", feedId, err),
        });
      }
    },
    onremotetrack: (track, mid, on, meta) => {
      if (track.kind !== "audio") return;
      if (on && (!meta || meta.reason === "created")) {
        playRemote(sub, track);
        sub.live = true;
        showPresence();
      } else if (!on && meta && meta.reason === "ended") {
        sub.live = false;
        showPresence();
      }
    },
    ondata: (data) => {
      if (kind === "interpreter") onCaption(data);
    },
    oncleanup: () => {
      sub.live = false;
    },
  });
}

function dropSubscription(feedId) {
  const sub = room.subscriptions.get(feedId);
  if (!sub) return;
  room.subscriptions.delete(feedId);
  sub.closed = true;
  sub.live = false;
  for (const source of sub.sources) source.disconnect();
  for (const element of sub.elements) element.srcObject = null;
  if (sub.handle) sub.handle.detach();
  showPresence();
}

// --- audio: original ducked under the translation ------------------------------------------------

async function startAudio() {
  const ctx = new AudioContext({ latencyHint: "interactive" });
  audio.ctx = ctx;
  audio.rate = ctx.sampleRate;
  audio.recording = [];
  audio.recordedSamples = 0;
  audio.originalGain = ctx.createGain();
  audio.originalGain.connect(ctx.destination);
  audio.originalIn = audio.originalGain;
  audio.interpreterIn = ctx.createGain();
  audio.interpreterIn.connect(ctx.destination);
  audio.analyser = ctx.createAnalyser();
  audio.analyser.fftSize = 2048;
  audio.level = new Float32Array(audio.analyser.fftSize);
  audio.interpreterIn.connect(audio.analyser);
  if (params.get("record") === "1") {
    try {
      await ctx.audioWorklet.addModule("/recorder.js");
      const tap = new AudioWorkletNode(ctx, "tap", { numberOfInputs: 1, numberOfOutputs: 1, channelCount: 1, channelCountMode: "explicit" });
      const sink = ctx.createGain();
      sink.gain.value = 0; // the tap must be pulled by the graph but not heard twice
      audio.interpreterIn.connect(tap);
      tap.connect(sink);
      sink.connect(ctx.destination);
      tap.port.onmessage = (event) => {
        audio.recording.push(event.data);
        audio.recordedSamples += event.data.length;
      };
    } catch (err) {
      console.warn("cannot record the interpreter feed", err);
    }
  }
  await ctx.resume().catch(() => {});
  room.timers.push(setInterval(() => applyDucking(false), 50));
}

function playRemote(sub, track) {
  const stream = new MediaStream([track]);
  // Chrome delivers remote WebRTC audio to WebAudio only while a media element also plays it.
  const element = new Audio();
  element.muted = true;
  element.srcObject = stream;
  element.play().catch(() => {});
  sub.elements.push(element);
  const source = audio.ctx.createMediaStreamSource(stream);
  source.connect(sub.kind === "interpreter" ? audio.interpreterIn : audio.originalIn);
  sub.sources.push(source);
}

function applyDucking(force) {
  if (!audio.ctx || !audio.analyser) return;
  audio.analyser.getFloatTimeDomainData(audio.level);
  let sum = 0;
  for (const v of audio.level) sum += v * v;
  const rms = Math.sqrt(sum / audio.level.length);
  const now = audio.ctx.currentTime;
  if (rms > DUCK_THRESHOLD) audio.lastVoice = now;
  const playing = now - audio.lastVoice < DUCK_HOLD_S;
  if (playing === page.ducking && !force) return;
  page.ducking = playing;
  const gain = audio.originalGain.gain;
  gain.cancelScheduledValues(now);
  gain.setTargetAtTime(playing ? page.duckLevel : 1, now, playing ? DUCK_ATTACK_S : DUCK_RELEASE_S);
  $("speaking").hidden = !playing;
}

// --- captions ------------------------------------------------------------------------------------

function onCaption(data) {
  const caption = parseJson(data);
  if (!caption || caption.type !== "caption") return;
  if (Array.isArray(caption.for) && caption.for.length && !caption.for.some((id) => sameId(id, page.myId))) return;
  const entry = {
    key: `${caption.lane}|${caption.item}`,
    speaker: String(caption.speaker_name || "").slice(0, 200),
    sourceLang: caption.source_lang || null,
    lang: caption.lang || null,
    original: String(caption.original || "").slice(0, 4000),
    translation: String(caption.translation || "").slice(0, 4000),
    final: Boolean(caption.final),
  };
  const existing = page.captions.findIndex((c) => c.key === entry.key);
  if (existing >= 0) page.captions[existing] = entry;
  else page.captions.push(entry);
  if (page.captions.length > MAX_CAPTIONS) page.captions.splice(0, page.captions.length - MAX_CAPTIONS);
  renderCaptions();
}

function renderCaptions() {
  const list = $("captions");
  list.replaceChildren();
  for (const c of page.captions) {
    const li = document.createElement("li");
    li.className = c.final ? "caption final" : "caption partial";
    const who = document.createElement("div");
    who.className = "who";
    who.textContent = `${c.speaker || "Someone"} · ${languageName(c.sourceLang)} → ${languageName(c.lang)}`;
    const translation = document.createElement("p");
    translation.className = "translation";
    translation.textContent = c.translation;
    const original = document.createElement("p");
    original.className = "original";
    original.textContent = c.original;
    li.append(who, translation, original);
    list.append(li);
  }
  $("no-captions").hidden = page.captions.length > 0;
  list.lastElementChild?.scrollIntoView({ block: "nearest" });
}

// --- leaving -------------------------------------------------------------------------------------

function teardown() {
  for (const timer of room.timers) clearInterval(timer);
  room.timers = [];
  for (const id of [...room.subscriptions.keys()]) dropSubscription(id);
  if (room.handle) {
    try {
      room.handle.send({ message: { request: "leave" } });
      room.handle.hangup();
    } catch {
      // already gone
    }
  }
  if (room.janus) {
    try {
      room.janus.destroy({ cleanupHandles: true });
    } catch {
      // already gone
    }
  }
  room.janus = null;
  room.handle = null;
  if (room.mic) room.mic.stop();
  room.mic = null;
  room.publishers.clear();
  room.attendees.clear();
  room.trusted = new Set();
  room.claims.clear();
  if (audio.ctx) audio.ctx.close().catch(() => {});
  audio.ctx = null;
  audio.analyser = null;
  page.myId = null;
  page.dtx = { asked: false, answered: false };
}

function leave(message) {
  page.phase = "left";
  teardown();
  $("call").hidden = true;
  $("join-form").hidden = false;
  $("join").disabled = false;
  setPhase("left", message);
}

init();
