import { readFileSync } from "node:fs";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { buildProgram } from "../src/program.js";

// Taken before the commands declared their own definitions (program.ts declared every flag):
// the help of every command, which lists each flag, its default, choices and environment variable.
// Regenerated deliberately when `latch doctor` was added (only its lines changed), and when
// `latch prices update` was added (its own help and its line in `latch prices`), and for its
// `--max-removed`, for `--from genai-prices`, and when `latch retention apply` was added (its help
// and its line in `latch`).
const BEFORE = readFileSync(new URL("./fixtures/help.txt", import.meta.url), "utf8");

const COMMANDS = [
  [],
  ["prices"],
  ["prices", "import"],
  ["prices", "show"],
  ["prices", "update"],
  ["rate"],
  ["migrate"],
  ["doctor"],
  ["export"],
  ["export", "status"],
  ["summary"],
  ["lines"],
  ["serve"],
  ["keys"],
  ["keys", "create"],
  ["retention"],
  ["retention", "apply"],
];

describe("latch --help", () => {
  it("shows every command's flags as before", async () => {
    let out = "";
    const sink = new Writable({
      write(chunk, _encoding, done) {
        out += String(chunk);
        done();
      },
    }) as unknown as NodeJS.WriteStream;
    for (const command of COMMANDS) {
      out += `\n===== ${command.join(" ")}\n`;
      const program = buildProgram({
        signal: new AbortController().signal,
        stdout: sink,
        stderr: sink,
        env: {},
      });
      await expect(program.parseAsync([...command, "--help"], { from: "user" })).rejects.toMatchObject({
        exitCode: 0,
      });
    }
    expect(`${out}\n`).toBe(BEFORE);
  });
});
