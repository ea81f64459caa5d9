// A Hugging Face checkpoint's weights: a folder with model.safetensors.index.json and its shards, a
// folder with model.safetensors (or other *.safetensors files), or one .safetensors file.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { QtkError, fileError } from '../errors.js';
import { decodeToF32 } from '../dtypes.js';
import { SAFETENSORS_INDEX_FILE, SAFETENSORS_SINGLE_FILE, compareCodePoints, type SafetensorsTensorInfo } from './format.js';
import { SafetensorsFile } from './file.js';

/** Reads the index's weight_map (tensor name -> shard file name). */
async function readIndex(indexPath: string): Promise<Map<string, string>> {
  let json: unknown;
  try {
    json = JSON.parse(await fs.readFile(indexPath, 'utf8'));
  } catch (e) {
    throw fileError(indexPath, `cannot be read as JSON (${(e as Error).message})`, 'Re-download the checkpoint\'s index file', e);
  }
  const wm = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof wm !== 'object' || wm === null || Array.isArray(wm)) {
    throw fileError(indexPath, 'has no "weight_map" object (tensor name -> shard file)', 'Re-download the checkpoint\'s index file');
  }
  const map = new Map<string, string>();
  for (const [name, shard] of Object.entries(wm as Record<string, unknown>)) {
    if (typeof shard !== 'string' || shard === '' || path.isAbsolute(shard) || shard.split(/[\\/]/).includes('..')) {
      throw fileError(indexPath, `weight_map maps ${JSON.stringify(name)} to ${JSON.stringify(shard)}, expected a shard file name inside the checkpoint folder`, 'Re-download the checkpoint\'s index file');
    }
    map.set(name, shard);
  }
  return map;
}

const exists = (p: string) => fs.stat(p).then((s) => s.isFile(), () => false);

export class SafetensorsCheckpoint {
  readonly dir: string;
  /** Shard paths, sorted by file name. */
  readonly files: string[];
  /** The index file, when the checkpoint has one. */
  readonly indexPath: string | undefined;
  private readonly shards: SafetensorsFile[];
  private readonly byName: Map<string, { info: SafetensorsTensorInfo; shard: SafetensorsFile }>;
  private readonly order: string[];

  private constructor(dir: string, indexPath: string | undefined, shards: SafetensorsFile[], byName: Map<string, { info: SafetensorsTensorInfo; shard: SafetensorsFile }>, order: string[]) {
    this.dir = dir;
    this.indexPath = indexPath;
    this.shards = shards;
    this.files = shards.map((s) => s.path);
    this.byName = byName;
    this.order = order;
  }

  static async open(pathOrDir: string): Promise<SafetensorsCheckpoint> {
    const st = await fs.stat(pathOrDir).catch((e: Error) => {
      throw fileError(pathOrDir, `cannot be opened (${e.message})`, 'Check the path: give a checkpoint folder or a .safetensors file');
    });
    let dir: string;
    let files: string[];
    let index: Map<string, string> | undefined;
    let indexPath: string | undefined;
    if (st.isFile() && path.basename(pathOrDir) === SAFETENSORS_INDEX_FILE) {
      return SafetensorsCheckpoint.open(path.dirname(pathOrDir)); // the index names the checkpoint folder
    }
    if (st.isFile()) {
      dir = path.dirname(pathOrDir);
      files = [pathOrDir];
    } else {
      dir = pathOrDir;
      indexPath = path.join(dir, SAFETENSORS_INDEX_FILE);
      if (await exists(indexPath)) {
        index = await readIndex(indexPath);
        const names = [...new Set(index.values())].sort(compareCodePoints);
        files = names.map((n) => path.join(dir, n));
        for (let i = 0; i < files.length; i++) {
          if (!(await exists(files[i]!))) {
            throw fileError(indexPath, `names shard ${JSON.stringify(names[i])}, which is missing from ${dir}`, 'The download is incomplete: re-download the checkpoint, or check that every shard the index lists is in this folder');
          }
        }
      } else {
        indexPath = undefined;
        const all = (await fs.readdir(dir)).filter((f) => f.endsWith('.safetensors'));
        // llama.cpp's converter takes model*.safetensors; other names (adapter_model…) only when there is none.
        const models = all.filter((f) => f.startsWith('model'));
        const chosen = (models.length > 0 ? models : all).sort(compareCodePoints);
        if (chosen.length === 0) {
          throw fileError(dir, `has no ${SAFETENSORS_INDEX_FILE}, no ${SAFETENSORS_SINGLE_FILE} and no other *.safetensors file`, 'Give the folder of a Hugging Face checkpoint with safetensors weights (convert .bin/.pt weights to safetensors first)');
        }
        files = chosen.map((n) => path.join(dir, n));
      }
    }

    const shards: SafetensorsFile[] = [];
    try {
      for (const f of files) shards.push(await SafetensorsFile.open(f));
      const byName = new Map<string, { info: SafetensorsTensorInfo; shard: SafetensorsFile }>();
      const order: string[] = [];
      for (const shard of shards) {
        // Shards in file-name order, names sorted within each: the llama.cpp converter's order.
        for (const name of [...shard.tensors.keys()].sort(compareCodePoints)) {
          const prev = byName.get(name);
          if (prev !== undefined) {
            throw fileError(shard.path, `holds tensor ${JSON.stringify(name)}, which ${prev.shard.path} also holds`, 'Remove the stray duplicate shard from the checkpoint folder or re-download it');
          }
          byName.set(name, { info: shard.tensors.get(name)!, shard });
          order.push(name);
        }
      }
      if (index !== undefined) {
        for (const [name, shardName] of index) {
          const got = byName.get(name);
          if (got === undefined || path.basename(got.shard.path) !== path.basename(shardName)) {
            throw fileError(indexPath!, `maps tensor ${JSON.stringify(name)} to ${shardName}, but that shard has no such tensor${got ? ` (it is in ${path.basename(got.shard.path)})` : ''}`, 'The index and shards are from different downloads: re-download the checkpoint');
          }
        }
        // Like llama.cpp's converter: a shard tensor the index does not list means mismatched files.
        const extra = order.filter((n) => !index.has(n));
        if (extra.length > 0) {
          const where = path.basename(byName.get(extra[0]!)!.shard.path);
          throw fileError(indexPath!, `does not list ${extra.length} tensor(s) found in the shards, e.g. ${JSON.stringify(extra[0])} in ${where}`, 'The index and shards are from different downloads: re-download the checkpoint');
        }
      }
      return new SafetensorsCheckpoint(dir, indexPath, shards, byName, order);
    } catch (e) {
      await Promise.all(shards.map((s) => s.close().catch(() => {})));
      throw e;
    }
  }

  /** All tensor names: shard files in sorted order, names sorted within a shard (llama.cpp converter order). */
  names(): string[] {
    return [...this.order];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): SafetensorsTensorInfo {
    return this.entry(name).info;
  }

  /** Metadata of every shard merged (the first shard's value wins on a conflict). */
  metadata(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const s of [...this.shards].reverse()) Object.assign(out, s.metadata);
    return out;
  }

  async read(name: string): Promise<Uint8Array> {
    return this.entry(name).shard.read(name);
  }

  async readRange(name: string, byteStart: number, byteLength: number): Promise<Uint8Array> {
    return this.entry(name).shard.readRange(name, byteStart, byteLength);
  }

  async readF32(name: string): Promise<Float32Array> {
    const e = this.entry(name);
    return decodeToF32(e.info.dtype, await e.shard.read(name));
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.close()));
  }

  private entry(name: string) {
    const e = this.byName.get(name);
    if (e === undefined) {
      throw new QtkError(`${this.indexPath ?? this.files.join(', ')}: the checkpoint in ${this.dir} has no tensor named ${JSON.stringify(name)} (it has ${this.byName.size} tensors). Check that the checkpoint matches its config.json, or re-download it.`, { file: this.dir });
    }
    return e;
  }
}
