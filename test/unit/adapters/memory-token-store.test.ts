import { MemoryTokenStore } from '../../../functions/adapters/memory-token-store.js';
import { tokenStoreContract } from '../../support/token-store-contract.js';

tokenStoreContract('MemoryTokenStore', async () => ({ store: new MemoryTokenStore() }));
