// How the page reads an interpreter feed's label: pure functions, no DOM, unit-tested with
// `node --test tests/js/` (tests/unit/test_web_labels.py runs them).
//
// The bot describes each feed it publishes with a stream description (translator_bot/room/metadata.py
// `interpreter_description`, read the same way by `feed_is_for` there):
//   {"role":"interpreter","for":<id>,"lang":"es"}          one listener's feed (per-listener mode)
//   {"role":"interpreter","for":[<id>, ...],"lang":"es"}   every listener of a language (per-language mode)
//   {"role":"interpreter","for":null,"lang":"en"}          everyone (mixed mode)

const MAX_LISTENERS = 1000; // a longer "for" list is garbage, not an audience

// Janus ids are numbers, but a client may write them as strings: compare as text, never booleans.
export function sameId(a, b) {
  const usable = (v) => (typeof v === "number" && Number.isFinite(v)) || (typeof v === "string" && v !== "");
  return usable(a) && usable(b) && String(a) === String(b);
}

// The listeners a feed is labelled for: null (everyone), or a list of ids (one for a per-listener feed).
export function feedListeners(forValue) {
  if (forValue === null || forValue === undefined) return null;
  if (Array.isArray(forValue)) return forValue.slice(0, MAX_LISTENERS);
  return [forValue];
}

// Whether a feed whose parsed description is `desc` is meant for the participant `myId`: only then
// does the page play it (never another listener's, never one whose list leaves me out, so a speaker is
// never played their own speech translated back).
export function feedIsFor(desc, myId) {
  if (!desc || typeof desc !== "object" || desc.role !== "interpreter") return false;
  return feedServes(desc.for, myId);
}

// The same decision on the "for" value alone (null or absent: everyone).
export function feedServes(forValue, myId) {
  const listeners = feedListeners(forValue);
  return listeners === null || listeners.some((id) => sameId(id, myId));
}
