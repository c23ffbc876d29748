/**
 * Send until a definite answer (a 503 or no answer means "ask again with the same key"), a bounded
 * number of times with a pause between. Every answer is appended to `answers` for the record.
 */
export async function untilDefinite<A>(
  send: () => Promise<A>,
  isDefinite: (answer: A) => boolean,
  bounds: { attempts: number; pauseMs: number },
  answers: A[] = [],
): Promise<A> {
  answers.push(await send());
  for (let attempt = 1; attempt < bounds.attempts && !isDefinite(answers[answers.length - 1]!); attempt++) {
    await Bun.sleep(bounds.pauseMs);
    answers.push(await send());
  }
  return answers[answers.length - 1]!;
}
