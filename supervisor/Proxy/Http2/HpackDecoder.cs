using System.Text;

namespace Supervisor.Proxy.Http2;

/// <summary>
/// Decodes the header blocks one connection receives (RFC 7541), fragment by fragment, as a state
/// machine over octets: a block split over HEADERS and CONTINUATION frames is never gathered in one
/// buffer, and a field too large to keep is read past without being stored.
/// <para>
/// Invariants, enforced where they are written:
/// <list type="bullet">
/// <item>The dynamic table follows every block, kept or not: a field that is not delivered still enters
/// the table if its representation says so (<see cref="Complete"/>).</item>
/// <item>A size update is only read at the start of a block, and never above the size this side allows
/// (<see cref="OnSizeUpdate"/>); it evicts down to the new size, it does not empty the table.</item>
/// <item>No string is held longer than it may be delivered or indexed (<see cref="BeginString"/>): memory
/// per connection is bounded by the header list limit, whatever the peer sends.</item>
/// </list>
/// Any violation is an <see cref="HpackException"/>: the peer's table and ours may then differ, so the
/// caller ends the connection with COMPRESSION_ERROR.
/// </para>
/// </summary>
internal sealed class HpackDecoder(int maxHeaderListSize)
{
    /// <summary>SETTINGS_HEADER_TABLE_SIZE: the default, which this client never changes.</summary>
    public const int MaxTableSize = 4096;

    /// <summary>RFC 7541 4.1: each entry costs its name and value octets plus 32.</summary>
    public const int EntryOverhead = 32;

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

    private enum State
    {
        /// <summary>Between representations: the next octet starts one.</summary>
        Ready,

        /// <summary>Reading the rest of the integer that opens a representation (an index, or a table size).</summary>
        Prefix,

        /// <summary>The next octet starts a string: its Huffman flag and the first bits of its length.</summary>
        StringStart,

        /// <summary>Reading the rest of a string's length.</summary>
        StringLength,

        /// <summary>Reading a string's octets.</summary>
        StringOctets,
    }

    private enum Representation
    {
        Indexed,
        LiteralIndexed,
        LiteralNotIndexed,
        SizeUpdate,
    }

    private readonly int _maxHeaderListSize = maxHeaderListSize;

    // The dynamic table, newest last: HPACK index StaticTable.Length + 1 is the last element.
    private readonly List<(string Name, string Value)> _dynamic = [];
    private int _dynamicSize;
    private int _maxDynamicSize = MaxTableSize;

    // Where the decoder is within the current representation.
    private State _state;
    private Representation _representation;
    private IntegerDecoder _integer;

    // The literal being read: its name once known (null while reading it, or if it was too large to
    // keep), and the string in progress.
    private string? _name;
    private bool _readingName;
    private bool _huffman;
    private int _stringLength;
    private int _stringRead;
    private bool _keepingString;
    private byte[] _stringBuffer = new byte[256];

    // The current block: where its fields go, their size so far, whether a field has been read.
    private List<KeyValuePair<string, string>>? _fields;
    private int _listSize;
    private bool _fieldSeen;

    /// <summary>True when the current block held more than the header list limit: some of its fields were not delivered.</summary>
    public bool ExceededListSize { get; private set; }

    /// <summary>Starts a header block whose fields go to <paramref name="fields"/> (null: decoded for the table only).</summary>
    public void BeginBlock(List<KeyValuePair<string, string>>? fields)
    {
        _fields = fields;
        _listSize = 0;
        _fieldSeen = false;
        ExceededListSize = false;
    }

    /// <summary>Decodes one fragment of the current block.</summary>
    /// <exception cref="HpackException">The fragment breaks HPACK.</exception>
    public void Decode(ReadOnlySpan<byte> fragment)
    {
        for (var at = 0; at < fragment.Length;)
        {
            switch (_state)
            {
                case State.Ready:
                    StartRepresentation(fragment[at++]);
                    break;
                case State.Prefix:
                    if (_integer.TryContinue(fragment[at++], out var value))
                    {
                        OnPrefix(value);
                    }
                    break;
                case State.StringStart:
                    StartString(fragment[at++]);
                    break;
                case State.StringLength:
                    if (_integer.TryContinue(fragment[at++], out var length))
                    {
                        BeginString(length);
                    }
                    break;
                case State.StringOctets:
                    at += ReadStringOctets(fragment[at..]);
                    break;
            }
        }
    }

    /// <summary>Ends the current block, which must end between two representations.</summary>
    /// <exception cref="HpackException">The block ended inside a representation.</exception>
    public void EndBlock()
    {
        _fields = null;
        if (_state != State.Ready)
        {
            throw new HpackException("a header block that ends inside a field");
        }
    }

    private void StartRepresentation(byte first)
    {
        int prefixBits;
        if ((first & 0x80) != 0)
        {
            (_representation, prefixBits) = (Representation.Indexed, 7);
        }
        else if ((first & 0x40) != 0)
        {
            (_representation, prefixBits) = (Representation.LiteralIndexed, 6);
        }
        else if ((first & 0x20) != 0)
        {
            (_representation, prefixBits) = (Representation.SizeUpdate, 5);
        }
        else
        {
            // 0000 (without indexing) and 0001 (never indexed): both leave the table alone.
            (_representation, prefixBits) = (Representation.LiteralNotIndexed, 4);
        }
        if (_integer.TryStart(first, prefixBits, out var value))
        {
            OnPrefix(value);
        }
        else
        {
            _state = State.Prefix;
        }
    }

    private void OnPrefix(int value)
    {
        switch (_representation)
        {
            case Representation.Indexed:
                var (name, entryValue) = Entry(value);
                Deliver(name, entryValue);
                _state = State.Ready;
                break;
            case Representation.SizeUpdate:
                OnSizeUpdate(value);
                _state = State.Ready;
                break;
            default:
                // A literal: its name is the entry at this index, or (index 0) a string that follows.
                _readingName = value == 0;
                _name = _readingName ? null : Entry(value).Name;
                _state = State.StringStart;
                break;
        }
    }

    // RFC 7541 4.2: only at the start of a block, and never above what SETTINGS_HEADER_TABLE_SIZE allows.
    private void OnSizeUpdate(int size)
    {
        if (_fieldSeen)
        {
            throw new HpackException("a dynamic table size update after the first field of a block");
        }
        if (size > MaxTableSize)
        {
            throw new HpackException($"a dynamic table size update to {size} octets, above the {MaxTableSize} allowed");
        }
        _maxDynamicSize = size;
        EvictTo(size);
    }

    private void StartString(byte first)
    {
        _huffman = (first & 0x80) != 0;
        if (_integer.TryStart(first, 7, out var length))
        {
            BeginString(length);
        }
        else
        {
            _state = State.StringLength;
        }
    }

    private void BeginString(int length)
    {
        _stringLength = length;
        _stringRead = 0;
        _keepingString = ShouldKeep(length);
        if (_keepingString && _stringBuffer.Length < length)
        {
            Array.Resize(ref _stringBuffer, Math.Max(length, _stringBuffer.Length * 2));
        }
        _state = State.StringOctets;
        if (length == 0)
        {
            OnStringComplete();
        }
    }

    // A string is kept only if its field can still be delivered within the list limit, or must enter
    // the table. One too large for either is read past: nothing of it is stored.
    private bool ShouldKeep(int length)
    {
        var nameLength = _readingName ? 0 : _name?.Length ?? -1;
        if (nameLength < 0)
        {
            return false; // Its name was too large to keep, so the field is lost whatever its value.
        }
        var fieldSize = (long)nameLength + length + EntryOverhead;
        var deliverable = _fields is not null && !ExceededListSize && _listSize + fieldSize <= _maxHeaderListSize;
        var indexable = _representation == Representation.LiteralIndexed && fieldSize <= _maxDynamicSize;
        return deliverable || indexable;
    }

    private int ReadStringOctets(ReadOnlySpan<byte> available)
    {
        var count = Math.Min(available.Length, _stringLength - _stringRead);
        if (_keepingString)
        {
            available[..count].CopyTo(_stringBuffer.AsSpan(_stringRead));
        }
        _stringRead += count;
        if (_stringRead == _stringLength)
        {
            OnStringComplete();
        }
        return count;
    }

    private void OnStringComplete()
    {
        string? text = null;
        if (_keepingString)
        {
            var octets = _stringBuffer.AsSpan(0, _stringLength);
            text = _huffman ? DecodeHuffman(octets) : Encoding.Latin1.GetString(octets);
        }
        if (_readingName)
        {
            _readingName = false;
            _name = text;
            _state = State.StringStart;
            return;
        }
        _state = State.Ready;
        Complete(_name, text);
    }

    // The literal is whole: enter it in the table if its representation says so, then deliver it.
    private void Complete(string? name, string? value)
    {
        if (_representation == Representation.LiteralIndexed)
        {
            if (name is not null && value is not null)
            {
                Add(name, value);
            }
            else
            {
                EvictTo(0); // Too large to have been kept, so too large for the table: adding it empties the table.
            }
        }
        if (name is not null && value is not null)
        {
            Deliver(name, value);
        }
        else
        {
            _fieldSeen = true;
            ExceededListSize = true;
        }
    }

    private void Deliver(string name, string value)
    {
        _fieldSeen = true;
        if (_fields is null)
        {
            return;
        }
        // The size SETTINGS_MAX_HEADER_LIST_SIZE counts (RFC 9113 6.5.2).
        _listSize += name.Length + value.Length + EntryOverhead;
        if (ExceededListSize || _listSize > _maxHeaderListSize)
        {
            ExceededListSize = true;
            return;
        }
        _fields.Add(new KeyValuePair<string, string>(name, value));
    }

    private static string DecodeHuffman(ReadOnlySpan<byte> encoded)
    {
        var decoded = new byte[Huffman.MaxDecodedLength(encoded.Length)];
        var length = Huffman.Decode(encoded, decoded);
        return Encoding.Latin1.GetString(decoded, 0, length);
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
        var size = name.Length + value.Length + EntryOverhead;
        if (size > _maxDynamicSize)
        {
            EvictTo(0); // RFC 7541 4.4: an entry larger than the table empties it and is not added.
            return;
        }
        EvictTo(_maxDynamicSize - size);
        _dynamic.Add((name, value));
        _dynamicSize += size;
    }

    private void EvictTo(int targetSize)
    {
        var evicted = 0;
        while (_dynamicSize > targetSize && evicted < _dynamic.Count)
        {
            var (name, value) = _dynamic[evicted++];
            _dynamicSize -= name.Length + value.Length + EntryOverhead;
        }
        _dynamic.RemoveRange(0, evicted);
    }

    /// <summary>An HPACK integer (RFC 7541 5.1) read one octet at a time, across fragments.</summary>
    private struct IntegerDecoder
    {
        private int _value;
        private int _shift;

        public bool TryStart(byte first, int prefixBits, out int value)
        {
            var max = (1 << prefixBits) - 1;
            value = first & max;
            if (value < max)
            {
                return true;
            }
            _value = max;
            _shift = 0;
            return false;
        }

        public bool TryContinue(byte next, out int value)
        {
            // Up to 2^28 and a little: no header field or table size comes near it.
            if (_shift > 21)
            {
                throw new HpackException("an integer longer than 2^28");
            }
            _value += (next & 0x7F) << _shift;
            _shift += 7;
            value = _value;
            return (next & 0x80) == 0;
        }
    }
}

/// <summary>A header block that breaks HPACK: the connection's compression state is lost with it (COMPRESSION_ERROR).</summary>
internal sealed class HpackException(string message) : Exception(message);
