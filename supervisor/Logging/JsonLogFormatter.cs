using System.Text.Encodings.Web;
using System.Text.Json;
using Serilog.Events;
using Serilog.Formatting;
using Supervisor.Configuration;

namespace Supervisor.Logging;

/// <summary>
/// <c>--log-format json</c>: one JSON object per line, <c>{"time", "level", "pid", "message", ...}</c>, and
/// each of the event's properties as a field of its own in camelCase (<c>workerPid</c>, <c>slot</c>, <c>generation</c>),
/// so a log pipeline can filter on them without parsing the message.
/// </summary>
internal sealed class JsonLogFormatter : ITextFormatter
{
    private static readonly HashSet<string> Reserved = ["time", "level", "pid", "message", "exception"];

    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public void Format(LogEvent logEvent, TextWriter output)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteString("time", logEvent.Timestamp.ToString("yyyy-MM-dd'T'HH:mm:ss.fffzzz", System.Globalization.CultureInfo.InvariantCulture));
            writer.WriteString("level", logEvent.Level.ToGunicornName());
            writer.WriteNumber("pid", Environment.ProcessId);
            using (var message = new StringWriter())
            {
                GunicornFormatter.WriteMessage(logEvent, message);
                writer.WriteString("message", message.ToString());
            }
            if (logEvent.Exception is not null)
            {
                writer.WriteString("exception", logEvent.Exception.ToString());
            }
            foreach (var (name, value) in logEvent.Properties)
            {
                var field = JsonNamingPolicy.CamelCase.ConvertName(name);
                if (!Reserved.Contains(field) && value is ScalarValue scalar)
                {
                    writer.WritePropertyName(field);
                    WriteScalar(writer, scalar.Value);
                }
            }
            writer.WriteEndObject();
        }
        output.Write(System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
        output.Write('\n');
    }

    private static void WriteScalar(Utf8JsonWriter writer, object? value)
    {
        switch (value)
        {
            case null:
                writer.WriteNullValue();
                break;
            case bool flag:
                writer.WriteBooleanValue(flag);
                break;
            case int or long or short or byte or uint or ulong or ushort:
                writer.WriteNumberValue(Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture));
                break;
            case double or float or decimal:
                writer.WriteNumberValue(Convert.ToDouble(value, System.Globalization.CultureInfo.InvariantCulture));
                break;
            default:
                writer.WriteStringValue(Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture));
                break;
        }
    }
}
