using System.Text;
using Supervisor.Proxy.Http2;

namespace Supervisor.Tests.Infrastructure;

/// <summary>
/// An HPACK encoder for the tests' scripted workers: every representation RFC 7541 has, Huffman coding
/// on demand, so a test can send the blocks Kestrel's encoder never does.
/// </summary>
internal sealed class HpackWriter
{
    private readonly List<byte> _block = [];

    public byte[] ToArray() => [.. _block];

    /// <summary>An indexed field (static or dynamic table).</summary>
    public HpackWriter Indexed(int index)
    {
        Integer(7, 0x80, index);
        return this;
    }

    /// <summary>A literal with a new name, with incremental indexing or without.</summary>
    public HpackWriter Literal(string name, string value, bool index = false, bool huffman = false)
    {
        _block.Add(index ? (byte)0x40 : (byte)0x00);
        String(name, huffman);
        String(value, huffman);
        return this;
    }

    /// <summary>A literal whose name is the table entry <paramref name="nameIndex"/>.</summary>
    public HpackWriter LiteralIndexedName(int nameIndex, string value, bool index = false, bool huffman = false)
    {
        Integer(index ? 6 : 4, index ? (byte)0x40 : (byte)0x00, nameIndex);
        String(value, huffman);
        return this;
    }

    /// <summary>A dynamic table size update.</summary>
    public HpackWriter SizeUpdate(int size)
    {
        Integer(5, 0x20, size);
        return this;
    }

    /// <summary>The :status field from the static table where it is there (200, 204, 206, 304, 400, 404, 500), else a literal.</summary>
    public HpackWriter Status(int status) => status switch
    {
        200 => Indexed(8),
        204 => Indexed(9),
        304 => Indexed(11),
        404 => Indexed(13),
        _ => LiteralIndexedName(8, status.ToString(System.Globalization.CultureInfo.InvariantCulture)),
    };

    /// <summary>RFC 7541 5.2: the octets' codes, padded with the leading bits of EOS (all ones).</summary>
    public static byte[] HuffmanEncode(ReadOnlySpan<byte> octets)
    {
        var output = new List<byte>();
        ulong bits = 0;
        var count = 0;
        foreach (var octet in octets)
        {
            var (code, length) = Huffman.Code(octet);
            bits = (bits << length) | code;
            count += length;
            while (count >= 8)
            {
                output.Add((byte)(bits >> (count - 8)));
                count -= 8;
            }
        }
        if (count > 0)
        {
            output.Add((byte)((bits << (8 - count)) | (0xFFu >> count)));
        }
        return [.. output];
    }

    private void String(string value, bool huffman)
    {
        var octets = Encoding.Latin1.GetBytes(value);
        if (huffman)
        {
            octets = HuffmanEncode(octets);
        }
        Integer(7, huffman ? (byte)0x80 : (byte)0x00, octets.Length);
        _block.AddRange(octets);
    }

    private void Integer(int prefixBits, byte high, int value)
    {
        var max = (1 << prefixBits) - 1;
        if (value < max)
        {
            _block.Add((byte)(high | value));
            return;
        }
        _block.Add((byte)(high | max));
        value -= max;
        while (value >= 0x80)
        {
            _block.Add((byte)((value & 0x7F) | 0x80));
            value >>= 7;
        }
        _block.Add((byte)value);
    }
}
