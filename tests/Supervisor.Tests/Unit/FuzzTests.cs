using System.Globalization;
using CsCheck;
using Supervisor.Proxy.Http2;
using Supervisor.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Supervisor.Tests.Unit;

/// <summary>
/// Fuzzing of the front's HTTP/2 client where a worker's octets meet it: the HPACK decoder and the
/// frame reader with the session behind it. Random and structure-aware inputs (CsCheck, shrunk to the
/// smallest failing case), after a committed corpus (<c>Unit/FuzzCorpus.txt</c>). The only way out for
/// any input is a protocol error the connection handles (<see cref="HpackException"/>,
/// <see cref="Http2ConnectionException"/>); every stream ends; nothing grows without bound.
/// <para>
/// Each property runs <see cref="Iterations"/> inputs in the suite; <c>SUPERVISOR_FUZZ_SECONDS</c> runs
/// each for that long instead; CsCheck reports how many inputs each tried (the longer runs in docs/request-path.md).
/// </para>
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output)
{
    private const int Iterations = 20_000;
    private const int ListLimit = 16 * 1024;

    private static readonly int? Seconds = int.TryParse(Environment.GetEnvironmentVariable("SUPERVISOR_FUZZ_SECONDS"), NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) ? seconds : null;

    private static readonly Lazy<IReadOnlyList<(string Target, byte[] Input)>> Corpus = new(() =>
        [.. File.ReadAllLines(Path.Combine(Artifacts.RepositoryRoot, "tests", "Supervisor.Tests", "Unit", "FuzzCorpus.txt"))
            .Where(line => line.Length > 0 && !line.StartsWith('#'))
            .Select(line => line.Split(' ', 2))
            .Select(parts => (parts[0], Convert.FromHexString(parts[1])))]);

    [Fact]
    public void The_hpack_decoder_takes_any_octets_in_any_fragments()
    {
        foreach (var (_, input) in Corpus.Value.Where(entry => entry.Target == "hpack"))
        {
            DecodeAnything(input, 7);
        }
        Gen.Select(Gen.Byte.Array[0, 300], Gen.Int[1, 64]).Sample((input, fragment) => DecodeAnything(input, fragment), output.WriteLine, iter: Seconds is null ? Iterations : -1, time: Seconds ?? -1, threads: 1);
    }

    [Fact]
    public void Hpack_blocks_of_every_representation_decode_to_what_was_encoded()
    {
        var field = Gen.Select(Gen.String[Gen.Char['a', 'z'], 1, 12], Gen.String[Gen.Char[(char)0x20, (char)0xFF], 0, 40], Gen.Int[0, 3], Gen.Bool);
        Gen.Select(field.List[0, 20], Gen.Int[1, 40], Gen.Bool).Sample((fields, fragment, sizeUpdate) =>
        {
            var writer = new HpackWriter();
            if (sizeUpdate)
            {
                writer.SizeUpdate(4096);
            }
            var expected = new List<(string, string)>();
            var indexed = new List<(string Name, string Value)>(); // Newest last; small entries, so nothing is evicted.
            foreach (var (name, value, representation, huffman) in fields)
            {
                switch (representation)
                {
                    case 0:
                        writer.Literal(name, value, index: false, huffman);
                        break;
                    case 1:
                        writer.Literal(name, value, index: true, huffman);
                        indexed.Add((name, value));
                        break;
                    case 2:
                        writer.LiteralIndexedName(32, value, index: false, huffman); // "cookie" from the static table.
                        expected.Add(("cookie", value));
                        continue;
                    default:
                        if (indexed.Count == 0)
                        {
                            writer.Indexed(2); // :method GET
                            expected.Add((":method", "GET"));
                            continue;
                        }
                        writer.Indexed(62); // The newest dynamic entry.
                        expected.Add(indexed[^1]);
                        continue;
                }
                expected.Add((name, value));
            }
            var decoder = new HpackDecoder(1024 * 1024);
            var decoded = new List<KeyValuePair<string, string>>();
            decoder.BeginBlock(decoded);
            var block = writer.ToArray();
            for (var at = 0; at < block.Length; at += fragment)
            {
                decoder.Decode(block.AsSpan(at, Math.Min(fragment, block.Length - at)));
            }
            decoder.EndBlock();
            Assert.Equal(expected, decoded.Select(pair => (pair.Key, pair.Value)));
        }, output.WriteLine, iter: Seconds is null ? Iterations / 4 : -1, time: Seconds ?? -1, threads: 1);
    }

    [Fact]
    public void The_frame_reader_and_session_take_any_frames_and_end_every_stream()
    {
        foreach (var (_, input) in Corpus.Value.Where(entry => entry.Target == "frames"))
        {
            ReceiveAnything(input, 5);
        }
        var streamId = Gen.OneOf(Gen.OneOf(0, 1, 2, 3, 5, 7, 9, int.MaxValue), Gen.Int[0, 20]);
        var payload = Gen.OneOf(
            Gen.Byte.Array[0, 40],
            Gen.Const(Frames.Head(200)),
            Gen.Const(Frames.Head(103)),
            Gen.Const(new HpackWriter().Status(200).Literal("x-a", "b", index: true, huffman: true).ToArray()),
            Gen.Const(new HpackWriter().Status(200).SizeUpdate(0).ToArray()),
            Gen.Select(Gen.UShort[0, 8], Gen.UInt).Select((id, value) => Frames.Settings((id, value))[Http2Frame.HeaderLength..]),
            Gen.Const(Frames.Int32(0)), Gen.Const(Frames.Int32(Http2Frame.ErrorCode.RefusedStream)), Gen.Const(new byte[8]));
        var frame = Gen.Select(Gen.OneOf(Gen.Byte[0, 9], Gen.Byte), Gen.Byte, streamId, payload)
            .Select((type, flags, stream, body) => Frames.Frame(type, flags, stream, body));
        Gen.Select(frame.Array[1, 24], Gen.Int[1, 200]).Sample((frames, read) => ReceiveAnything([.. frames.SelectMany(octets => octets)], read),
            output.WriteLine, iter: Seconds is null ? Iterations : -1, time: Seconds ?? -1, threads: 1);
        Gen.Select(Gen.Byte.Array[0, 400], Gen.Int[1, 64]).Sample((octets, read) => ReceiveAnything(octets, read),
            output.WriteLine, iter: Seconds is null ? Iterations : -1, time: Seconds ?? -1, threads: 1);
    }

    private static void DecodeAnything(byte[] input, int fragment)
    {
        var decoder = new HpackDecoder(ListLimit);
        var fields = new List<KeyValuePair<string, string>>();
        try
        {
            decoder.BeginBlock(fields);
            for (var at = 0; at < input.Length; at += fragment)
            {
                decoder.Decode(input.AsSpan(at, Math.Min(fragment, input.Length - at)));
            }
            decoder.EndBlock();
        }
        catch (HpackException)
        {
        }
        Assert.True(fields.Sum(field => field.Key.Length + field.Value.Length + HpackDecoder.EntryOverhead) <= ListLimit);
    }

    // The worker's octets after the preface's SETTINGS, in reads of the given size, with four requests in flight.
    private static void ReceiveAnything(byte[] octets, int read)
    {
        var harness = new SessionHarness();
        var streams = Enumerable.Range(0, 4).Select(_ => harness.Open()).ToArray();
        var buffered = new List<byte>();
        try
        {
            for (var at = 0; at < octets.Length; at += read)
            {
                buffered.AddRange(octets.AsSpan(at, Math.Min(read, octets.Length - at)).ToArray());
                var consumed = harness.Session.Receive(buffered.ToArray());
                buffered.RemoveRange(0, consumed);
                foreach (var stream in harness.Session.TakeTouched())
                {
                    stream.Signal();
                }
                Assert.True(harness.Session.Output.Unsent < 64 * 1024 * 1024, "output grew without bound");
            }
        }
        catch (Exception exception) when (exception is Http2ConnectionException or HpackException)
        {
        }
        harness.Session.FailAll(new HttpRequestException("the test ended the connection"));
        foreach (var stream in harness.Session.TakeTouched())
        {
            stream.Signal();
        }
        foreach (var stream in streams)
        {
            Assert.True(stream.State is ResponseState.Completed or ResponseState.Failed, $"stream {stream.Id} left {stream.State}");
            Assert.True(stream.HeadArrived.IsCompleted, $"stream {stream.Id}'s forwarder would wait for ever");
            Assert.True(stream.State != ResponseState.Completed || stream.Status >= 200);
        }
    }
}
