// Socket addresses: checked and encoded before any syscall.
import { argTypeError, invalid } from './errors'
import { MAX_NAME } from './constants'

/** The address as bytes for the kernel, or `invalid`, checked before any syscall. */
export function encodeAddr(address: unknown, name = 'addr'): Buffer {
  if (typeof address !== 'string') throw argTypeError(name, 'of type string', address)
  const bytes = Buffer.from(address, 'utf8')
  if (bytes.length === 0) throw new invalid(address, 'the address is empty')
  const abstract = bytes[0] === 0
  const nameBytes = abstract ? bytes.subarray(1) : bytes
  if (nameBytes.length === 0) throw new invalid(address, 'the abstract name is empty')
  if (nameBytes.includes(0)) throw new invalid(address, 'the address contains a NUL byte')
  if (nameBytes.length > MAX_NAME) {
    throw new invalid(address, `${nameBytes.length} bytes is longer than the ${MAX_NAME} bytes sun_path allows`)
  }
  return bytes
}
