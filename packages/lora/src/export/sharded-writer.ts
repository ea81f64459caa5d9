// The safetensors files of an exported Hugging Face checkpoint: tensors cut into shards of at most
// maxShardBytes in their given order (transformers' save_pretrained names and index), each tensor's bytes
// produced on demand so only one tensor is in memory.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { SafetensorsWriter, type SafetensorsDtype } from '@qtk/core';

/** transformers' save_pretrained default shard size. */
export const DEFAULT_SHARD_BYTES = 5_000_000_000;

export interface ShardTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  bytes: number;
}

export function shardName(i: number, n: number): string {
  return n === 1 ? 'model.safetensors' : `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

/** Writes the shards (and the index when there are several) into `dir`; returns the file names and total bytes. */
export async function writeShards<T extends ShardTensor>(
  dir: string,
  tensors: readonly T[],
  o: { maxShardBytes?: number; bytesOf: (t: T) => Promise<Uint8Array>; onWritten?: (t: T) => void },
): Promise<{ files: string[]; total: number }> {
  const maxShard = o.maxShardBytes ?? DEFAULT_SHARD_BYTES;
  const shards: T[][] = [[]];
  let acc = 0;
  for (const t of tensors) {
    if (acc > 0 && acc + t.bytes > maxShard) { shards.push([]); acc = 0; }
    shards[shards.length - 1]!.push(t);
    acc += t.bytes;
  }
  const weightMap: Record<string, string> = {};
  const files: string[] = [];
  for (const [i, shard] of shards.entries()) {
    const file = shardName(i, shards.length);
    files.push(file);
    const w = await SafetensorsWriter.create(path.join(dir, file), shard.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape })), { metadata: { format: 'pt' } });
    try {
      for (const t of shard) {
        weightMap[t.name] = file;
        await w.write(t.name, await o.bytesOf(t));
        o.onWritten?.(t);
      }
      await w.finish();
    } catch (e) {
      await w.abort();
      throw e;
    }
  }
  const total = tensors.reduce((a, t) => a + t.bytes, 0);
  if (shards.length > 1) {
    await fs.writeFile(path.join(dir, 'model.safetensors.index.json'), `${JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2)}\n`);
    files.push('model.safetensors.index.json');
  }
  return { files, total };
}
