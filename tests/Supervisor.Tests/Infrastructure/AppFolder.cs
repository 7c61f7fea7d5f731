using System.Text.Json.Nodes;

namespace Supervisor.Tests.Infrastructure;

/// <summary>
/// A private copy of the published test app that a test can redeploy while it runs: new code swapped in
/// the way deploy tools do it (write beside, then rename), or a changed appsettings.json.
/// </summary>
internal sealed class AppFolder : IDisposable
{
    private AppFolder(string directory) => Directory = directory;

    public string Directory { get; }

    public string AppPath => Path.Combine(Directory, "TestApp.dll");

    public static async Task<AppFolder> CopyOfTestAppAsync()
    {
        var artifacts = await Artifacts.GetAsync();
        var folder = new AppFolder(System.IO.Directory.CreateTempSubdirectory("sup-app-").FullName);
        foreach (var file in System.IO.Directory.GetFiles(Path.GetDirectoryName(artifacts.TestApp)!))
        {
            File.Copy(file, Path.Combine(folder.Directory, Path.GetFileName(file)));
        }
        return folder;
    }

    /// <summary>Replaces the app's main assembly atomically: running workers keep the old file open.</summary>
    public void DeployAssembly(string newAssembly)
    {
        var staged = AppPath + ".new";
        File.Copy(newAssembly, staged, overwrite: true);
        File.Move(staged, AppPath, overwrite: true);
    }

    /// <summary>Sets (or, with null, removes) one key of appsettings.json, atomically.</summary>
    public void SetSetting(string key, string? value)
    {
        var path = Path.Combine(Directory, "appsettings.json");
        var settings = File.Exists(path) ? JsonNode.Parse(File.ReadAllText(path))!.AsObject() : [];
        if (value is null)
        {
            settings.Remove(key);
        }
        else
        {
            settings[key] = value;
        }
        File.WriteAllText(path + ".new", settings.ToJsonString());
        File.Move(path + ".new", path, overwrite: true);
    }

    public void Dispose() => System.IO.Directory.Delete(Directory, recursive: true);
}
