namespace Supervisor.Proxy.Http2;

/// <summary>
/// The static Huffman code of HPACK (RFC 7541 5.2 and Appendix B), for decoding. The code is canonical:
/// codes of one length are consecutive, in symbol order, and shorter codes come first. So the table is
/// the bit length of each of the 257 symbols (256 octets and EOS), and the codes follow from it; the unit
/// tests check the result against the RFC's examples.
/// </summary>
internal static class Huffman
{
    public const int EndOfString = 256;

    private const int MaxCodeLength = 30;

    // Appendix B, the "len" column, symbol by symbol.
    private static ReadOnlySpan<byte> CodeLengths =>
    [
        13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
        6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
        13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
        15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
        20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
        22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
        26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
        20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
        30,
    ];

    private static readonly DecodingTable Table = DecodingTable.Build(CodeLengths);

    /// <summary>The code of <paramref name="symbol"/>, right-aligned, and its length in bits.</summary>
    public static (uint Code, int Length) Code(int symbol) => (Table.Codes[symbol], CodeLengths[symbol]);

    /// <summary>The most octets <paramref name="encodedLength"/> octets of Huffman code can decode to (5 bits per octet at best).</summary>
    public static int MaxDecodedLength(int encodedLength) => (int)((encodedLength * 8L) / 5);

    /// <summary>Decodes <paramref name="source"/> into <paramref name="destination"/>; returns the octets written.</summary>
    /// <exception cref="HpackException">
    /// The string holds the EOS symbol, its padding is longer than 7 bits or not the most significant
    /// bits of EOS (all ones), or it does not fit <paramref name="destination"/>.
    /// </exception>
    public static int Decode(ReadOnlySpan<byte> source, Span<byte> destination)
    {
        ulong bits = 0; // The unread bits, left-aligned in the low `available` bits' worth at the top.
        var available = 0;
        var written = 0;
        var at = 0;
        while (true)
        {
            while (available <= 56 && at < source.Length)
            {
                bits |= (ulong)source[at++] << (56 - available);
                available += 8;
            }
            if (available == 0)
            {
                return written;
            }
            var symbol = Table.Match(bits, available, out var length);
            if (symbol < 0)
            {
                // No code fits in what is left: only padding may remain, up to 7 bits of EOS's leading ones.
                var padding = bits >> (64 - available);
                if (at < source.Length || available > 7 || padding != (1UL << available) - 1)
                {
                    throw new HpackException("a Huffman-coded string with invalid padding");
                }
                return written;
            }
            if (symbol == EndOfString)
            {
                throw new HpackException("a Huffman-coded string holding the EOS symbol");
            }
            if (written == destination.Length)
            {
                throw new HpackException("a Huffman-coded string longer than it may be");
            }
            destination[written++] = (byte)symbol;
            bits <<= length;
            available -= length;
        }
    }

    /// <summary>
    /// The canonical code as decoding tables: for each length, the first code (right-aligned) and the
    /// index in <see cref="Symbols"/> of the symbol it stands for.
    /// </summary>
    private sealed class DecodingTable
    {
        private readonly uint[] _firstCode = new uint[MaxCodeLength + 1];
        private readonly int[] _count = new int[MaxCodeLength + 1];
        private readonly int[] _firstIndex = new int[MaxCodeLength + 1];
        private readonly int _shortest;

        private DecodingTable(int shortest) => _shortest = shortest;

        public uint[] Codes { get; } = new uint[EndOfString + 1];

        private int[] Symbols { get; } = new int[EndOfString + 1];

        public static DecodingTable Build(ReadOnlySpan<byte> lengths)
        {
            var bySymbolOrder = new int[lengths.Length];
            for (var symbol = 0; symbol < lengths.Length; symbol++)
            {
                bySymbolOrder[symbol] = symbol;
            }
            var lengthArray = lengths.ToArray();
            var sorted = bySymbolOrder.OrderBy(symbol => lengthArray[symbol]).ThenBy(symbol => symbol).ToArray();
            var table = new DecodingTable(lengthArray[sorted[0]]);
            uint code = 0;
            var previousLength = lengthArray[sorted[0]];
            for (var index = 0; index < sorted.Length; index++)
            {
                var symbol = sorted[index];
                var length = lengthArray[symbol];
                code <<= length - previousLength;
                previousLength = length;
                if (table._count[length]++ == 0)
                {
                    table._firstCode[length] = code;
                    table._firstIndex[length] = index;
                }
                table.Codes[symbol] = code;
                table.Symbols[index] = symbol;
                code++;
            }
            return table;
        }

        /// <summary>The symbol whose code starts <paramref name="bits"/> (left-aligned), or -1 if none fits in <paramref name="available"/> bits.</summary>
        public int Match(ulong bits, int available, out int length)
        {
            for (length = _shortest; length <= MaxCodeLength && length <= available; length++)
            {
                var candidate = (uint)(bits >> (64 - length));
                var offset = candidate - _firstCode[length];
                if (_count[length] > 0 && candidate >= _firstCode[length] && offset < (uint)_count[length])
                {
                    return Symbols[_firstIndex[length] + (int)offset];
                }
            }
            return -1;
        }
    }
}
