// The page's offer edit that asks for Opus DTX (translator_bot/web/static/sdp.js), on the offer
// Chromium really makes for the page's microphone (chromium-offer.sdp: Chromium 156's createOffer for
// one send-only audio transceiver, CRLF line endings as sent) and on the shapes other offers take.
// Run: node --test tests/js/sdp.test.mjs
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { test } from "node:test";

import { asksForOpusDtx, withOpusDtx } from "../../translator_bot/web/static/sdp.js";

const chromium = await readFile(new URL("./chromium-offer.sdp", import.meta.url), "utf8");
const changed = (before, after) => {
  const a = before.split("\r\n");
  const b = after.split("\r\n");
  return { removed: a.filter((l) => !b.includes(l)), added: b.filter((l) => !a.includes(l)) };
};

test("Chromium's offer: usedtx=1 joins Opus's own fmtp line and nothing else changes", () => {
  assert.equal(asksForOpusDtx(chromium), false); // browsers never ask on their own
  const edited = withOpusDtx(chromium);
  assert.deepEqual(changed(chromium, edited), {
    removed: ["a=fmtp:111 minptime=10;useinbandfec=1"],
    added: ["a=fmtp:111 minptime=10;useinbandfec=1;usedtx=1"],
  });
  assert.equal(edited.split("\r\n").length, chromium.split("\r\n").length);
  assert.ok(edited.endsWith("\r\n") && !/[^\r]\n/.test(edited)); // CRLF kept, final one too
  assert.equal(asksForOpusDtx(edited), true);
  assert.ok(edited.includes("a=fmtp:63 111/111\r\n")); // RED (which carries Opus) is another format
});

test("asking twice asks once", () => {
  const once = withOpusDtx(chromium);
  assert.equal(withOpusDtx(once), once);
});

test("an explicit usedtx=0 is turned into a request, wherever it stands", () => {
  const sdp = (fmtp) => `m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 ${fmtp}\r\n`;
  assert.equal(withOpusDtx(sdp("usedtx=0;useinbandfec=1")), sdp("usedtx=1;useinbandfec=1"));
  assert.equal(withOpusDtx(sdp("useinbandfec=1; usedtx=0")), sdp("useinbandfec=1;usedtx=1"));
  assert.equal(withOpusDtx(sdp("useinbandfec=1;USEDTX=0")), sdp("useinbandfec=1;usedtx=1"));
  assert.equal(withOpusDtx(sdp("useinbandfec=1;")), sdp("useinbandfec=1;usedtx=1"));
});

test("an Opus payload type without an fmtp line gets one, next to its rtpmap", () => {
  const sdp = "v=0\nm=audio 9 RTP/AVP 109 0\na=rtpmap:109 OPUS/48000/2\na=rtpmap:0 PCMU/8000\na=fmtp:0 x=1\n";
  assert.equal(
    withOpusDtx(sdp),
    "v=0\nm=audio 9 RTP/AVP 109 0\na=rtpmap:109 OPUS/48000/2\na=fmtp:109 usedtx=1\na=rtpmap:0 PCMU/8000\na=fmtp:0 x=1\n",
  );
  // An fmtp line with no parameters, or one written before its rtpmap, is the line to edit.
  assert.equal(
    withOpusDtx("m=audio 9 RTP/AVP 96\na=fmtp:96\na=rtpmap:96 opus/48000/2\n"),
    "m=audio 9 RTP/AVP 96\na=fmtp:96 usedtx=1\na=rtpmap:96 opus/48000/2\n",
  );
});

test("every audio section's Opus, never another section's or another codec's line", () => {
  const sdp = [
    "v=0",
    "a=fmtp:111 session-level=1", // not in a media section
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63",
    "a=rtpmap:111 opus/48000/2",
    "a=fmtp:111 minptime=10",
    "a=rtpmap:63 red/48000/2",
    "a=fmtp:63 111/111",
    "m=video 9 UDP/TLS/RTP/SAVPF 111",
    "a=rtpmap:111 VP8/90000", // the same number means another codec here
    "a=fmtp:111 x-google-start-bitrate=800",
    "m=audio 9 UDP/TLS/RTP/SAVPF 112 114",
    "a=rtpmap:112 opus/48000/2",
    "a=fmtp:112 stereo=1",
    "a=rtpmap:114 multiopus/48000/6",
    "a=fmtp:114 channel_mapping=0,4,1,2,3,5;num_streams=4;coupled_streams=2",
    "",
  ].join("\r\n");
  const { removed, added } = changed(sdp, withOpusDtx(sdp));
  assert.deepEqual(removed, ["a=fmtp:111 minptime=10", "a=fmtp:112 stereo=1"]);
  assert.deepEqual(added, ["a=fmtp:111 minptime=10;usedtx=1", "a=fmtp:112 stereo=1;usedtx=1"]);
});

test("an offer without Opus, or no SDP at all, comes back as it was", () => {
  const pcmu = "v=0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
  assert.equal(withOpusDtx(pcmu), pcmu);
  assert.equal(withOpusDtx(""), "");
  assert.equal(withOpusDtx(undefined), undefined);
  assert.equal(asksForOpusDtx(undefined), false);
});

test("only usedtx=1 on Opus's line counts as asking", () => {
  const sdp = (line) => `m=audio 9 RTP/AVP 111 0\na=rtpmap:111 opus/48000/2\na=rtpmap:0 PCMU/8000\n${line}\n`;
  assert.equal(asksForOpusDtx(sdp("a=fmtp:111 useinbandfec=1;usedtx=1")), true);
  assert.equal(asksForOpusDtx(sdp("a=fmtp:111 usedtx=0")), false);
  assert.equal(asksForOpusDtx(sdp("a=fmtp:111 usedtx=10")), false);
  assert.equal(asksForOpusDtx(sdp("a=fmtp:0 usedtx=1")), false);
});
