// The relay's configuration types live in their own module, so that the
// configuration fuzz target builds without the server; relay users see them here.
@_exported public import TrailRelayConfiguration
