// Placeholder so SwiftPM accepts the empty target; replaced when the target gets real sources.
