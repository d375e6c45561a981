/** A request the engine cannot carry out, said so a person can act on it. */
export class EngineError extends Error {}
