import { describe, expect, test } from "bun:test";
import { Gate } from "../../lib/gate";

/** Work that runs until the test says so. */
function held() {
  let finish!: () => void;
  let fail!: (error: Error) => void;
  const done = new Promise<string>((resolve, reject) => {
    finish = () => resolve("done");
    fail = reject;
  });
  return { work: () => done, finish, fail };
}

const refused = () => "refused";

describe("Gate", () => {
  test("runs at most inFlightMax pieces of work at once and lets the waiting ones in, oldest first, as slots free", async () => {
    const gate = new Gate({ inFlightMax: 2, waitingMax: 10 });
    const jobs = Array.from({ length: 5 }, held);
    const started: number[] = [];
    const answers = jobs.map((job, i) =>
      gate.run(() => {
        started.push(i);
        return job.work();
      }, refused),
    );
    await Bun.sleep(0);
    expect({ started, inFlight: gate.inFlight, waiting: gate.waiting }).toEqual({ started: [0, 1], inFlight: 2, waiting: 3 });

    jobs[1]!.finish();
    await answers[1];
    expect(started).toEqual([0, 1, 2]);
    jobs[0]!.finish();
    await answers[0];
    expect(started).toEqual([0, 1, 2, 3]);
    for (const job of jobs) job.finish();
    expect(await Promise.all(answers)).toEqual(Array(5).fill("done"));
    expect({ inFlight: gate.inFlight, waiting: gate.waiting, refused: gate.refused }).toEqual({ inFlight: 0, waiting: 0, refused: 0 });
  });

  test("past the waiting list a caller is refused at once, and its work never runs", async () => {
    const gate = new Gate({ inFlightMax: 1, waitingMax: 2 });
    const job = held();
    const first = gate.run(job.work, refused);
    const waiting = [gate.run(async () => "second", refused), gate.run(async () => "third", refused)];
    let ran = false;
    const fourth = gate.run(async () => {
      ran = true;
      return "fourth";
    }, refused);
    expect(await fourth).toBe("refused");
    expect({ ran, inFlight: gate.inFlight, waiting: gate.waiting, refused: gate.refused }).toEqual({ ran: false, inFlight: 1, waiting: 2, refused: 1 });
    job.finish();
    expect(await Promise.all([first, ...waiting])).toEqual(["done", "second", "third"]);
  });

  test("with no waiting list at all, a busy gate refuses the next caller", async () => {
    const gate = new Gate({ inFlightMax: 1, waitingMax: 0 });
    const job = held();
    const first = gate.run(job.work, refused);
    expect(await gate.run(async () => "second", refused)).toBe("refused");
    job.finish();
    expect(await first).toBe("done");
    expect(await gate.run(async () => "third", refused)).toBe("third");
  });

  test("a slot is given back when the work throws, and the error reaches the caller", async () => {
    const gate = new Gate({ inFlightMax: 1, waitingMax: 1 });
    const job = held();
    const failing = gate.run(job.work, refused);
    const next = gate.run(async () => "next", refused);
    job.fail(new Error("boom"));
    await expect(failing).rejects.toThrow("boom");
    expect(await next).toBe("next");
    expect(gate.inFlight).toBe(0);
  });

  test("a waiter that finds no slot within waitMaxMs is refused and leaves the waiting list", async () => {
    const gate = new Gate({ inFlightMax: 1, waitingMax: 5, waitMaxMs: 20 });
    const job = held();
    const first = gate.run(job.work, refused);
    const second = gate.run(async () => "second", refused);
    expect(await second).toBe("refused");
    expect({ waiting: gate.waiting, refused: gate.refused }).toEqual({ waiting: 0, refused: 1 });
    job.finish();
    expect(await first).toBe("done");
    expect(gate.inFlight).toBe(0);
  });

  test("releasing a slot twice frees it once", async () => {
    const gate = new Gate({ inFlightMax: 1, waitingMax: 1 });
    const release = (await gate.enter())!;
    const waiter = gate.enter();
    release();
    release();
    const second = (await waiter)!;
    expect(gate.inFlight).toBe(1);
    second();
    expect(gate.inFlight).toBe(0);
  });

  test("limits that make no sense are refused at construction", () => {
    expect(() => new Gate({ inFlightMax: 0, waitingMax: 1 })).toThrow("inFlightMax");
    expect(() => new Gate({ inFlightMax: 1, waitingMax: -1 })).toThrow("waitingMax");
  });
});
