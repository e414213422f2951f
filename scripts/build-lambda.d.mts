export const VARIANTS: readonly string[];
export interface BundleSize {
  outfile: string;
  minified: number;
  gzipped: number;
}
export function bundle(entry: string, outfile: string): Promise<BundleSize>;
