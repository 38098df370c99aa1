import { Writable } from "node:stream";
import { StatusLine } from "@latch/s3/status-line";
import { describe, expect, it } from "vitest";
import { statusLineReporter } from "../src/progress.js";

function sink(): { out: Writable; text: () => string } {
  let text = "";
  const out = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  return { out, text: () => text };
}

const figures = { batches: 2, rows: 12_345, bytes: 4_200_000, elapsedMs: 1_300, rowsPerSecond: 9_496.2 };

describe("the terminal status line", () => {
  it("redraws in place, ends with a newline, and clears or ends only a line it shows", () => {
    const { out, text } = sink();
    const line = new StatusLine(out);
    line.clear();
    line.abandon();
    line.draw("a");
    line.draw("b");
    line.clear();
    line.clear();
    line.draw("c");
    line.abandon();
    line.abandon();
    line.finish("d");
    line.abandon();
    expect(text()).toBe("\r\x1b[2Ka\r\x1b[2Kb\r\x1b[2K\r\x1b[2Kc\n\r\x1b[2Kd\n");
  });

  it("prints an export's progress (progress: true) as it always has: exporting, then exported", () => {
    const done = sink();
    const ok = statusLineReporter(done.out);
    ok.batch(figures);
    ok.done(figures);
    const figuresText = "12,345 rows · 2 batches · 4.2 MB · 9,496 rows/s · 1.3 s";
    expect(done.text()).toBe(`\r\x1b[2Kexporting: ${figuresText}\r\x1b[2Kexported: ${figuresText}\n`);

    const failed = sink();
    const broken = statusLineReporter(failed.out);
    broken.failed();
    broken.batch(figures);
    broken.failed();
    expect(failed.text()).toBe(`\r\x1b[2Kexporting: ${figuresText}\n`);
  });
});
