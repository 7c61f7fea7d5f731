using System.Buffers;

namespace Supervisor.Proxy.Http2;

/// <summary>
/// Encodes a request's header block (RFC 7541): pseudo-headers from the static table, every other field
/// as a literal without indexing. Indexing would save octets on a socket that costs nothing per octet,
/// and would cost a table on both sides.
/// </summary>
internal static class RequestHeaderEncoder
{
    // Hop-by-hop fields: meaningless, and malformed, in HTTP/2 (RFC 9113 8.2.2). Host becomes :authority.
    private static readonly HashSet<string> Skipped = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Host",
    };

    private const byte IndexedGet = 0x82, IndexedPost = 0x83, IndexedSchemeHttp = 0x86;
    private const int MethodName = 2, PathName = 4, AuthorityName = 1;

    /// <summary>
    /// Encodes a client's request as the front forwards it, into an array rented from the shared pool:
    /// the target as the client sent it, the Host it settled on, and X-Forwarded-For, -Proto and -Host
    /// set from the client's settled identity (the front removed any the client sent).
    /// </summary>
    public static (byte[] Buffer, int Length) Encode(HttpRequest request, string target)
    {
        var writer = new Writer(ArrayPool<byte>.Shared.Rent(1024));
        var host = request.Host.Value ?? "";
        writer.PseudoHeaders(request.Method, target, host);
        foreach (var (name, values) in request.Headers)
        {
            if (name.Equals("Forwarded", StringComparison.OrdinalIgnoreCase))
            {
                continue; // RFC 7239's header is not set from the settled identity, so it is dropped (as YARP's path does).
            }
            foreach (var value in values)
            {
                writer.Field(name, value ?? "");
            }
        }
        if (request.HttpContext.Connection.RemoteIpAddress is { } client)
        {
            writer.Field("x-forwarded-for", client.ToString());
        }
        writer.Field("x-forwarded-proto", request.Scheme);
        writer.Field("x-forwarded-host", host);
        return (writer.Buffer, writer.Length);
    }

    private struct Writer(byte[] buffer)
    {
        public byte[] Buffer = buffer;
        public int Length;

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
            String(value, lowercase: false);
        }

        /// <summary>
        /// A literal without indexing with a new name, which HTTP/2 wants in lowercase; hop-by-hop fields
        /// are left out, and TE unless it is "trailers".
        /// </summary>
        public void Field(string name, string value)
        {
            if (Skipped.Contains(name) || (name.Equals("TE", StringComparison.OrdinalIgnoreCase) && !value.Equals("trailers", StringComparison.OrdinalIgnoreCase)))
            {
                return;
            }
            Byte(0x00);
            String(name, lowercase: true);
            String(value, lowercase: false);
        }

        private void String(string value, bool lowercase)
        {
            Integer(7, 0x00, value.Length);
            Reserve(value.Length);
            var destination = Buffer.AsSpan(Length, value.Length);
            for (var i = 0; i < value.Length; i++)
            {
                var c = value[i];
                if (c > 0xFF)
                {
                    // Kestrel rejects such requests at the front; only a transform could put one here.
                    throw new HttpRequestException($"a request header holds the character U+{(int)c:X4}, outside Latin-1");
                }
                destination[i] = lowercase && c is >= 'A' and <= 'Z' ? (byte)(c + 32) : (byte)c;
            }
            Length += value.Length;
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
