using System.Text;

namespace Supervisor.Proxy.Http2;

/// <summary>
/// Decodes the header blocks of one connection's responses (RFC 7541): the static table, a dynamic
/// table of the default 4,096 octets, and literals. Huffman-coded strings are refused: the workers are
/// Kestrel, whose encoder never uses them, and a block that cannot be decoded leaves the dynamic table
/// unknown, so the caller must give up the whole connection.
/// </summary>
internal sealed class HpackDecoder
{
    private const int MaxTableSize = 4096; // The default SETTINGS_HEADER_TABLE_SIZE, which this client never changes.

    private static readonly (string Name, string Value)[] StaticTable =
    [
        (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"), (":path", "/index.html"),
        (":scheme", "http"), (":scheme", "https"), (":status", "200"), (":status", "204"), (":status", "206"),
        (":status", "304"), (":status", "400"), (":status", "404"), (":status", "500"), ("accept-charset", ""),
        ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""), ("accept", ""),
        ("access-control-allow-origin", ""), ("age", ""), ("allow", ""), ("authorization", ""), ("cache-control", ""),
        ("content-disposition", ""), ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
        ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""), ("date", ""),
        ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""), ("if-match", ""),
        ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""), ("if-unmodified-since", ""),
        ("last-modified", ""), ("link", ""), ("location", ""), ("max-forwards", ""), ("proxy-authenticate", ""),
        ("proxy-authorization", ""), ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""),
        ("server", ""), ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
        ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
    ];

    // Newest last: HPACK index StaticTable.Length + 1 is the last element.
    private readonly List<(string Name, string Value)> _dynamic = [];
    private int _dynamicSize;
    private int _maxDynamicSize = MaxTableSize;

    /// <summary>Appends the fields of <paramref name="block"/> to <paramref name="fields"/>.</summary>
    /// <exception cref="HpackException">The block is malformed or uses what this decoder refuses.</exception>
    public void Decode(ReadOnlySpan<byte> block, List<KeyValuePair<string, string>> fields)
    {
        var at = 0;
        while (at < block.Length)
        {
            var first = block[at];
            string name, value;
            if ((first & 0x80) != 0)
            {
                (name, value) = Entry(ReadInteger(block, ref at, 7));
            }
            else if ((first & 0x40) != 0)
            {
                (name, value) = ReadLiteral(block, ref at, 6);
                Add(name, value);
            }
            else if ((first & 0x20) != 0)
            {
                var size = ReadInteger(block, ref at, 5);
                if (size > MaxTableSize)
                {
                    throw new HpackException($"a dynamic table size update to {size} octets, above the {MaxTableSize} allowed");
                }
                _maxDynamicSize = size;
                Evict(0);
                continue;
            }
            else
            {
                // Without indexing (0000) and never indexed (0001): both leave the table alone.
                (name, value) = ReadLiteral(block, ref at, 4);
            }
            fields.Add(new KeyValuePair<string, string>(name, value));
        }
    }

    private (string Name, string Value) ReadLiteral(ReadOnlySpan<byte> block, ref int at, int prefixBits)
    {
        var index = ReadInteger(block, ref at, prefixBits);
        var name = index == 0 ? ReadString(block, ref at) : Entry(index).Name;
        return (name, ReadString(block, ref at));
    }

    private (string Name, string Value) Entry(int index)
    {
        if (index >= 1 && index <= StaticTable.Length)
        {
            return StaticTable[index - 1];
        }
        var dynamicIndex = index - StaticTable.Length;
        if (index == 0 || dynamicIndex > _dynamic.Count)
        {
            throw new HpackException($"index {index} is outside the tables");
        }
        return _dynamic[_dynamic.Count - dynamicIndex];
    }

    private void Add(string name, string value)
    {
        var size = name.Length + value.Length + 32; // RFC 7541 4.1; strings are decoded one char per octet.
        Evict(Math.Max(0, _maxDynamicSize - size));
        if (size <= _maxDynamicSize)
        {
            _dynamic.Add((name, value));
            _dynamicSize += size;
        }
    }

    private void Evict(int targetSize)
    {
        var target = Math.Min(targetSize, _maxDynamicSize);
        var evicted = 0;
        while (_dynamicSize > target && evicted < _dynamic.Count)
        {
            var (name, value) = _dynamic[evicted++];
            _dynamicSize -= name.Length + value.Length + 32;
        }
        _dynamic.RemoveRange(0, evicted);
    }

    private static int ReadInteger(ReadOnlySpan<byte> block, ref int at, int prefixBits)
    {
        var max = (1 << prefixBits) - 1;
        var value = block[at++] & max;
        if (value < max)
        {
            return value;
        }
        for (var shift = 0; shift <= 21; shift += 7)
        {
            if (at >= block.Length)
            {
                throw new HpackException("an integer runs past the end of the block");
            }
            var next = block[at++];
            value += (next & 0x7F) << shift;
            if ((next & 0x80) == 0)
            {
                return value;
            }
        }
        throw new HpackException("an integer longer than 2^28");
    }

    private static string ReadString(ReadOnlySpan<byte> block, ref int at)
    {
        if (at >= block.Length)
        {
            throw new HpackException("a string runs past the end of the block");
        }
        if ((block[at] & 0x80) != 0)
        {
            throw new HpackException("a Huffman-coded string, which this client does not decode");
        }
        var length = ReadInteger(block, ref at, 7);
        if (length > block.Length - at)
        {
            throw new HpackException("a string runs past the end of the block");
        }
        var value = Encoding.Latin1.GetString(block.Slice(at, length));
        at += length;
        return value;
    }
}

/// <summary>A header block this client cannot decode; the connection's compression state is lost with it.</summary>
internal sealed class HpackException(string message) : Exception(message);
