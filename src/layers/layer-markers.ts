/**
 * The markers of any one layer, read as the overlay reads them there: the
 * upper in the form chosen at mount (kernel, userxattr or oci; the core's
 * UpperMarkers), a lower in its whiteout form (kernel: char 0/0; oci:
 * `.wh.NAME` files and `.wh..wh..opq`) with its overlay xattrs in the
 * mount's namespace (trusted.overlay.*, or user.overlay.* with userxattr,
 * where the kernel follows no redirect). The layer tools walk layers
 * physically and ask this what each name is.
 */
import type { Layer } from '../overlay/layers.js'
import { isOpaqueLowerDir, redirectOf as lowerRedirectOf } from '../overlay/lower-view.js'
import { isWhiteoutStat, OCI_OPAQUE_MARKER, OCI_WHITEOUT_PREFIX } from '../overlay/markers.js'
import type { Stats } from '../overlay/sys/fs.js'
import type { UpperMarkers } from '../overlay/upper-markers.js'

export interface LayerMarkers {
  /** The layer reads `.wh.*` names as markers, never entries. */
  readonly ociNames: boolean
  /** For a `.wh.NAME` marker name: the name it whites out ('' for the opaque marker); undefined for an entry name. */
  whitedOutBy (name: string): string | undefined
  /** A char 0/0 whiteout (every form reads those). */
  isWhiteout (st: Stats): boolean
  isOpaque (phys: string): boolean
  /** The directory's redirect, where this layer's form has redirects. */
  redirectOf (phys: string): string | undefined
}

function ociWhiteoutTarget (name: string): string | undefined {
  if (!name.startsWith(OCI_WHITEOUT_PREFIX)) return undefined
  return name === OCI_OPAQUE_MARKER ? '' : name.slice(OCI_WHITEOUT_PREFIX.length)
}

export function upperLayerMarkers (m: UpperMarkers): LayerMarkers {
  const oci = m.form === 'oci'
  return {
    ociNames: oci,
    whitedOutBy: (name) => oci ? ociWhiteoutTarget(name) : undefined,
    isWhiteout: isWhiteoutStat,
    isOpaque: (phys) => m.isOpaque(phys),
    redirectOf: (phys) => m.redirects ? m.redirectOf(phys) : undefined
  }
}

/** A lower as the core's lower view reads it (lower-view.ts: whiteouts undefined is the oci form; no redirect with userxattr). */
export function lowerLayerMarkers (layer: Layer): LayerMarkers {
  const oci = layer.whiteouts !== 'kernel'
  return {
    ociNames: oci,
    whitedOutBy: (name) => oci ? ociWhiteoutTarget(name) : undefined,
    isWhiteout: isWhiteoutStat,
    isOpaque: (phys) => isOpaqueLowerDir(layer, phys, oci),
    redirectOf: (phys) => lowerRedirectOf(layer, phys)
  }
}
