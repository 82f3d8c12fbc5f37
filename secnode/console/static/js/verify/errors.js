// The one error a verification step throws: what failed, in words, for the Report.

/** A proof, certificate, record or answer that does not verify; the message names the check. */
export class ProofError extends Error {
  constructor(message) {
    super(message);
    this.name = "ProofError";
  }
}

/**
 * Throw ProofError(message) unless the condition holds (the verifier's only assertion).
 * @param {boolean} condition
 * @param {string} message
 */
export function requireThat(condition, message) {
  if (!condition) throw new ProofError(message);
}
