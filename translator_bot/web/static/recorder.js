// Audio worklet: passes its input through and, while recording, hands copies of it to the page
// (used to check which sentence the interpreter feed played). Posts ~100 ms blocks.
class Tap extends AudioWorkletProcessor {
  constructor() {
    super();
    this.size = Math.round(sampleRate / 10);
    this.block = new Float32Array(this.size);
    this.filled = 0;
  }

  process(inputs, outputs) {
    const input = inputs[0] && inputs[0][0];
    const output = outputs[0] && outputs[0][0];
    const frames = output ? output.length : 128;
    for (let i = 0; i < frames; i++) {
      const v = input ? input[i] : 0;
      if (output) output[i] = v;
      this.block[this.filled++] = v;
      if (this.filled === this.size) {
        // Transferred, not copied: the old block is detached and a fresh one takes its place.
        this.port.postMessage(this.block, [this.block.buffer]);
        this.block = new Float32Array(this.size);
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("tap", Tap);
