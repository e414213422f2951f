export const LAMBDA_RUNTIME: string;
export const LAMBDA_NODE_MAJOR: number;
export function lambdaNodePath(): string;
