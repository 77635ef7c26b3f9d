// Starts Swagger UI on /api/docs (api/docs.py) from the appliance's own files: a file, not an inline
// script, so the pages' Content-Security-Policy needs no 'unsafe-inline' for scripts.
const root = document.getElementById("swagger-ui");
window.ui = SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  validatorUrl: null,  // no badge fetched from a validator on the internet
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
