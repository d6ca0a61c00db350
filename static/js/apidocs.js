// The API reference page (/docs): Swagger UI (vendored, loaded before this module) showing this server's
// /openapi.json, under the app's base like everything else. A file, not an inline script: the CSP.

import { appUrl } from './base.js';

globalThis.SwaggerUIBundle({
  url: appUrl('/openapi.json'),
  dom_id: '#swagger-ui',
  deepLinking: true, // an operation's own URL (#/tasks/submitTask) can be shared
  validatorUrl: null, // never send the document to an outside validator
  tryItOutEnabled: false,
  defaultModelsExpandDepth: 0,
});
