// Placeholder entry point; the real handler is being written.
export const handler = async (): Promise<unknown> => ({});
