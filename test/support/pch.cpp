// Compiled with support/pch.hpp precompiled, so that the precompiled header is
// built once, for this target, and every suite reuses it (REUSE_FROM).
