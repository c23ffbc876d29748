import { link, mkdir, unlink, writeFile } from "node:fs/promises";
import { dirname } from "node:path";

/**
 * Write a secret file once: owner-only permissions from the first byte, under a temporary name,
 * then published with link(), which fails if the file appeared meanwhile. Processes starting
 * together all end up reading the same file. Returns false when another process won.
 */
export async function publishOnce(path: string, content: string): Promise<boolean> {
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.${crypto.randomUUID().slice(0, 8)}.tmp`;
  await writeFile(temporary, content, { mode: 0o600 });
  try {
    await link(temporary, path);
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === "EEXIST") return false;
    throw error;
  } finally {
    await unlink(temporary);
  }
}
