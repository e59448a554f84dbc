// The page's reading of interpreter feed labels (translator_bot/web/static/labels.js), with the labels
// the bot writes in each output mode. Run: node --test tests/js/
import assert from "node:assert/strict";
import { test } from "node:test";

import { feedIsFor, feedListeners, sameId } from "../../translator_bot/web/static/labels.js";

const feed = (forValue) => ({ role: "interpreter", for: forValue, lang: "es" });

test("a per-listener feed is for its one listener", () => {
  assert.equal(feedIsFor(feed(42), 42), true);
  assert.equal(feedIsFor(feed(42), "42"), true); // ids written as text still match
  assert.equal(feedIsFor(feed(42), 7), false);
});

test("a per-language feed is for every id in its list and nobody else", () => {
  const spanish = feed([3, 5, 8]);
  assert.deepEqual([3, 5, 8, 4].map((id) => feedIsFor(spanish, id)), [true, true, true, false]);
  assert.equal(feedIsFor(feed([]), 3), false); // an empty audience plays to nobody
});

test("a mixed feed is for everyone", () => {
  assert.equal(feedIsFor(feed(null), 9), true);
  assert.equal(feedIsFor({ role: "interpreter", lang: "en" }, 9), true);
  assert.deepEqual(feedListeners(null), null);
});

test("anything that is not an interpreter label is for nobody", () => {
  assert.equal(feedIsFor({ lang: "es", name: "Bea", for: 9 }, 9), false);
  assert.equal(feedIsFor(null, 9), false);
  assert.equal(feedIsFor("{}", 9), false);
});

test("garbage ids never match", () => {
  assert.equal(feedIsFor(feed([true, {}, null, ""]), 1), false);
  assert.equal(feedIsFor(feed(true), 1), false);
  assert.equal(sameId(NaN, NaN), false);
  assert.equal(feedIsFor(feed([1, 2]), null), false); // before the page has an id of its own
  assert.equal(feedListeners(Array.from({ length: 5000 }, (_, i) => i)).length, 1000);
});

test("the page reads every label the way the bot's feed_is_for does", async () => {
  const { readFile } = await import("node:fs/promises");
  const cases = JSON.parse(await readFile(new URL("./feed_label_cases.json", import.meta.url), "utf8"));
  for (const c of cases) assert.equal(feedIsFor(c.label, c.id), c.for_me, c.why);
});
