package img2vid

// Stages a job goes through, in order.
const (
	StageQueued = "queued"
	StageDecode = "decode"
	StageEncode = "encode"
	StageDone   = "done"
)

// Progress is a snapshot of a running job, sent as often as frames reach the
// encoder.
type Progress struct {
	// Stage is one of the Stage constants.
	Stage string `json:"stage"`
	// Done and Total count output frames handed to the encoder.
	Done  int `json:"done"`
	Total int `json:"total"`
	// ElapsedMS is the time since the job started, ETAMS the estimated time
	// left (0 when unknown).
	ElapsedMS int64 `json:"elapsed_ms"`
	ETAMS     int64 `json:"eta_ms"`
	// Bytes is the size of the video written so far.
	Bytes int64 `json:"bytes"`
}

// Result describes a finished video.
type Result struct {
	Output     string  `json:"-"`
	Format     string  `json:"format"`
	Width      int     `json:"width"`
	Height     int     `json:"height"`
	Inputs     int     `json:"inputs"`     // images read
	Frames     int     `json:"frames"`     // frames encoded
	FPS        float64 `json:"fps"`        // output frame rate
	Duration   float64 `json:"duration_s"` // Frames / FPS
	Duplicates int     `json:"duplicates"` // consecutive exact duplicates seen (dropped with Dedupe)
	SceneCuts  int     `json:"scene_cuts"` // pairs held instead of interpolated
	FrameModel string  `json:"frame_model,omitempty"`
	// Detections summarises what the detect model found, when one ran.
	Detections  *DetectSummary `json:"detections,omitempty"`
	InterpModel string         `json:"interp_model,omitempty"`
	// Audio is the length in seconds of the soundtrack in the video; 0
	// when it has none.
	Audio     float64 `json:"audio_s,omitempty"`
	Bytes     int64   `json:"bytes"`      // size of the video file
	ElapsedMS int64   `json:"elapsed_ms"` // how long the conversion took
}

// DetectSummary is what a detect model found over a whole video.
type DetectSummary struct {
	Model   string         `json:"model"`
	Total   int            `json:"total"`   // detections over all frames
	Classes []ClassSummary `json:"classes"` // the classes found, in the model's class order
}

// ClassSummary is one class's part of a DetectSummary.
type ClassSummary struct {
	Class  string `json:"class"`
	Frames int    `json:"frames"` // frames of the video it is on
	Most   int    `json:"most"`   // the most of it on one frame
}
