using System.Buffers;
using System.Text;

namespace Supervisor.Proxy.Http2;

/// <summary>
/// Encodes a forwarded request's header block (RFC 7541): pseudo-headers from the static table, every
/// other field as a literal without indexing. Indexing would save octets on a socket that costs nothing
/// per octet, and would cost a table on both sides.
/// <para>
/// What the worker receives is what the app alone would have received for the same request, apart from
/// what a proxy changes by right: the fields of <see cref="ForwardingRules"/> are left out, names are
/// lowercase (HTTP/2 requires it), and X-Forwarded-For/-Proto/-Host carry the client's settled identity.
/// Values are encoded in UTF-8: Kestrel decoded the client's octets as UTF-8, and the worker's Kestrel
/// decodes them the same way, so the app sees the same string (an octet sequence that is not UTF-8 was
/// already refused at the front, with the 400 the app would give).
/// </para>
/// </summary>
internal static class RequestHeaderEncoder
{
    private const byte IndexedGet = 0x82, IndexedPost = 0x83, IndexedSchemeHttp = 0x86;
    private const int MethodName = 2, PathName = 4, AuthorityName = 1;

    /// <summary>
    /// Encodes a client's request as the front forwards it, into an array rented from the shared pool:
    /// the target as the client sent it, the Host it settled on, and X-Forwarded-For, -Proto and -Host
    /// set from the client's settled identity (the front removed any the client sent).
    /// </summary>
    public static EncodedRequest Encode(HttpRequest request, string target)
    {
        var writer = new Writer(ArrayPool<byte>.Shared.Rent(1024));
        var host = request.Host.Value ?? "";
        writer.PseudoHeaders(request.Method, target, host);
        var namedInConnection = ForwardingRules.NamedInConnection(request.Headers);
        foreach (var (name, values) in request.Headers)
        {
            if (ForwardingRules.IsNotForwarded(name) || name.Equals("Host", StringComparison.OrdinalIgnoreCase)
                || name.Equals("Forwarded", StringComparison.OrdinalIgnoreCase) || (namedInConnection.Count > 0 && namedInConnection.Contains(name)))
            {
                // Host becomes :authority; RFC 7239's Forwarded is not set from the settled identity, so it is dropped (as on YARP's path).
                continue;
            }
            foreach (var value in values)
            {
                writer.Field(name, value ?? "");
            }
        }
        if (ForwardingRules.KeepsTrailersTe(request))
        {
            writer.Field("te", "trailers");
        }
        if (request.HttpContext.Connection.RemoteIpAddress is { } client)
        {
            writer.Field("x-forwarded-for", client.ToString());
        }
        writer.Field("x-forwarded-proto", request.Scheme);
        writer.Field("x-forwarded-host", host);
        return new EncodedRequest(writer.Buffer, writer.Length, writer.ListSize);
    }

    private struct Writer(byte[] buffer)
    {
        public byte[] Buffer = buffer;
        public int Length;

        /// <summary>The header list size as SETTINGS_MAX_HEADER_LIST_SIZE counts it (RFC 9113 6.5.2).</summary>
        public long ListSize;

        /// <summary>:scheme is always http: the worker's own socket is cleartext; X-Forwarded-Proto carries the client's.</summary>
        public void PseudoHeaders(string method, string path, string authority)
        {
            if (method == HttpMethods.Get)
            {
                Byte(IndexedGet);
            }
            else if (method == HttpMethods.Post)
            {
                Byte(IndexedPost);
            }
            else
            {
                Literal(MethodName, method);
            }
            Byte(IndexedSchemeHttp);
            Literal(PathName, path);
            Literal(AuthorityName, authority);
            ListSize += (":method".Length + method.Length) + (":scheme".Length + 4) + (":path".Length + path.Length) + (":authority".Length + authority.Length) + (4 * HpackDecoder.EntryOverhead);
        }

        private void Byte(byte value)
        {
            Reserve(1);
            Buffer[Length++] = value;
        }

        /// <summary>A literal without indexing whose name is the static table's entry <paramref name="nameIndex"/>.</summary>
        private void Literal(int nameIndex, string value)
        {
            Integer(4, 0x00, nameIndex);
            Utf8String(value);
        }

        /// <summary>A literal without indexing with a new name, in lowercase as HTTP/2 requires.</summary>
        public void Field(string name, string value)
        {
            Byte(0x00);
            Integer(7, 0x00, name.Length);
            Reserve(name.Length);
            for (var i = 0; i < name.Length; i++)
            {
                // Kestrel accepted the name at the front, so it is an ASCII token.
                var c = name[i];
                Buffer[Length++] = (byte)(c is >= 'A' and <= 'Z' ? c + 32 : c);
            }
            var valueLength = Utf8String(value);
            ListSize += name.Length + valueLength + HpackDecoder.EntryOverhead;
        }

        private int Utf8String(string value)
        {
            var length = Encoding.UTF8.GetByteCount(value);
            Integer(7, 0x00, length);
            Reserve(length);
            Length += Encoding.UTF8.GetBytes(value, Buffer.AsSpan(Length, length));
            return length;
        }

        private void Integer(int prefixBits, byte high, int value)
        {
            Reserve(6);
            var max = (1 << prefixBits) - 1;
            if (value < max)
            {
                Buffer[Length++] = (byte)(high | value);
                return;
            }
            Buffer[Length++] = (byte)(high | max);
            value -= max;
            while (value >= 0x80)
            {
                Buffer[Length++] = (byte)((value & 0x7F) | 0x80);
                value >>= 7;
            }
            Buffer[Length++] = (byte)value;
        }

        private void Reserve(int count)
        {
            if (Buffer.Length - Length >= count)
            {
                return;
            }
            var larger = ArrayPool<byte>.Shared.Rent(Math.Max(Buffer.Length * 2, Length + count));
            Buffer.AsSpan(0, Length).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(Buffer);
            Buffer = larger;
        }
    }
}

/// <summary>A request's header block, in an array rented from the shared pool (<see cref="Return"/> it), and its header list size.</summary>
internal readonly record struct EncodedRequest(byte[] Buffer, int Length, long ListSize)
{
    public ReadOnlyMemory<byte> Block => Buffer.AsMemory(0, Length);

    public void Return() => ArrayPool<byte>.Shared.Return(Buffer);
}
