// The page's edit of its own offer: ask for Opus DTX on the microphone. A pure function, no DOM,
// unit-tested with `node --test tests/js/sdp.test.mjs` (tests/unit/test_web_sdp.py runs it).
//
// Opus DTX (discontinuous transmission): while the person is silent the browser sends one tiny
// packet about every 400 ms instead of 50 a second, so everyone receiving the microphone (Janus, the
// interpreter bot) pays for little more than the time the person speaks. Browsers never ask for it in
// their own offers. Janus VideoRoom decides per publisher from the offer's Opus `a=fmtp` line: with
// `usedtx=1` there (and, from Janus 1.3.1, a room that allows it: `opus_dtx`) its answer carries
// `usedtx=1` too, and the browser's encoder honours the answer.
//
// RFC 7587: `usedtx` is an Opus format parameter, given on the payload type's `a=fmtp` line; with no
// such line every parameter has its default (no DTX), so a line that only says `usedtx=1` is valid.

// "a=rtpmap:111 opus/48000/2": Opus's payload type in an audio section (RFC 7587 always writes
// opus/48000/2; the channel count is not checked). RED ("red/48000/2") and multichannel Opus
// ("multiopus") are other formats and keep their lines.
const OPUS_RTPMAP = /^a=rtpmap:(\d{1,3})\s+opus\/48000(?:\/\d+)?\s*$/i;
const FMTP = /^a=fmtp:(\d{1,3})(?:\s+(.*))?$/;
const USEDTX = /(^|;)\s*usedtx\s*=\s*[^;]*/i;

// The offer `sdp` with `usedtx=1` for every Opus payload type of every audio section: set on its
// `a=fmtp` line (an explicit `usedtx=0` becomes 1, the other parameters stay as they are), or a new
// `a=fmtp:<pt> usedtx=1` right after its `a=rtpmap` line when it has none. Everything else, line
// endings included, is returned unchanged; an SDP without Opus is returned as it came.
export function withOpusDtx(sdp) {
  if (typeof sdp !== "string" || sdp === "") return sdp;
  const eol = sdp.includes("\r\n") ? "\r\n" : "\n";
  const lines = sdp.split(eol);
  const out = [];
  for (const section of sections(lines)) {
    if (section.kind !== "audio") {
      out.push(...section.lines);
      continue;
    }
    const opus = new Set();
    for (const line of section.lines) {
      const match = OPUS_RTPMAP.exec(line);
      if (match) opus.add(match[1]);
    }
    const withFmtp = new Set();
    const edited = section.lines.map((line) => {
      const match = FMTP.exec(line);
      if (!match || !opus.has(match[1])) return line;
      withFmtp.add(match[1]);
      return `a=fmtp:${match[1]} ${withDtxParameter(match[2] || "")}`;
    });
    for (const line of edited) {
      out.push(line);
      const match = OPUS_RTPMAP.exec(line);
      if (match && !withFmtp.has(match[1])) out.push(`a=fmtp:${match[1]} usedtx=1`);
    }
  }
  return out.join(eol);
}

// Whether the Opus format of an SDP asks for DTX: the page's own check of what it sends.
export function asksForOpusDtx(sdp) {
  if (typeof sdp !== "string") return false;
  const lines = sdp.split(/\r?\n/);
  const opus = new Set(lines.map((line) => OPUS_RTPMAP.exec(line)?.[1]).filter(Boolean));
  return lines.some((line) => {
    const match = FMTP.exec(line);
    return Boolean(match && opus.has(match[1]) && /(^|;)\s*usedtx\s*=\s*1\s*(;|$)/i.test(match[2] || ""));
  });
}

// "minptime=10;useinbandfec=1" -> "minptime=10;useinbandfec=1;usedtx=1".
function withDtxParameter(parameters) {
  const text = parameters.trim();
  if (USEDTX.test(text)) return text.replace(USEDTX, (_, start) => `${start}usedtx=1`);
  if (text === "") return "usedtx=1";
  return text.endsWith(";") ? `${text}usedtx=1` : `${text};usedtx=1`;
}

// The session part, then one section per m= line; `kind` is the media ("audio", "video", ...).
function sections(lines) {
  const found = [{ kind: null, lines: [] }];
  for (const line of lines) {
    if (line.startsWith("m=")) found.push({ kind: line.slice(2).split(" ")[0], lines: [] });
    found[found.length - 1].lines.push(line);
  }
  return found;
}
